package pod

import (
	"bytes"
	"fmt"
	"net/http"
)

// sniffLen is how much of a file is read to decide its type.
const sniffLen = 512

// Magic numbers of the allowed types.
var (
	magicPNG  = []byte("\x89PNG\r\n\x1a\n")
	magicJPEG = []byte{0xFF, 0xD8, 0xFF}
)

// Sniff returns the content type of a file of kind from its first bytes
// (up to 512), by content, never by what the client declared: a photo is
// image/jpeg, image/png or image/webp; a signature image/png only (SVG can
// carry script, and is refused). Anything else is ErrUnsupportedType.
// http.DetectContentType and the type's magic number must agree.
func Sniff(kind string, head []byte) (string, error) {
	ct := http.DetectContentType(head)
	ok := false
	switch ct {
	case "image/png":
		ok = bytes.HasPrefix(head, magicPNG)
	case "image/jpeg":
		ok = kind == KindPhoto && bytes.HasPrefix(head, magicJPEG)
	case "image/webp":
		ok = kind == KindPhoto && isWebP(head)
	}
	if !ok {
		allowed := "image/jpeg, image/png or image/webp"
		if kind == KindSignature {
			allowed = "image/png"
		}
		return "", fmt.Errorf("%w: a %s must be %s; the file's content is %s", ErrUnsupportedType, kind, allowed, ct)
	}
	return ct, nil
}

// isWebP: a RIFF container of form type WEBP with a VP8/VP8L/VP8X chunk.
func isWebP(b []byte) bool {
	return len(b) >= 16 && bytes.Equal(b[0:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")) &&
		bytes.Equal(b[12:15], []byte("VP8"))
}
