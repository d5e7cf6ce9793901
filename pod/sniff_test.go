package pod_test

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/hextrack/hextrack/pod"
)

func encoded(t *testing.T, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// webpHead is the start of a real lossy WebP file (RIFF, size, WEBP, VP8 ).
var webpHead = append([]byte("RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"), make([]byte, 24)...)

func TestSniff(t *testing.T) {
	pngB := encoded(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	jpegB := encoded(t, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) })
	cases := []struct {
		name, kind string
		head       []byte
		want       string // "": refused
	}{
		{"png photo", pod.KindPhoto, pngB, "image/png"},
		{"jpeg photo", pod.KindPhoto, jpegB, "image/jpeg"},
		{"webp photo", pod.KindPhoto, webpHead, "image/webp"},
		{"png signature", pod.KindSignature, pngB, "image/png"},
		{"jpeg signature", pod.KindSignature, jpegB, ""},
		{"webp signature", pod.KindSignature, webpHead, ""},
		{"svg signature", pod.KindSignature, []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`), ""},
		{"svg with xml prolog", pod.KindPhoto, []byte(`<?xml version="1.0"?><svg></svg>`), ""},
		{"text", pod.KindPhoto, []byte("hello, this is not a picture"), ""},
		{"gif", pod.KindPhoto, []byte("GIF89a\x01\x00\x01\x00"), ""},
		{"riff but wav", pod.KindPhoto, []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"), ""},
		{"pdf", pod.KindPhoto, []byte("%PDF-1.7\n"), ""},
		{"truncated png magic", pod.KindPhoto, []byte("\x89PNG\r\n"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pod.Sniff(c.kind, c.head)
			if c.want == "" {
				if !errors.Is(err, pod.ErrUnsupportedType) {
					t.Fatalf("Sniff = %q, %v; want ErrUnsupportedType", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Sniff = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func FuzzSniff(f *testing.F) {
	f.Add([]byte("\x89PNG\r\n\x1a\n"), true)
	f.Add(webpHead, true)
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE0}, false)
	f.Fuzz(func(t *testing.T, head []byte, photo bool) {
		kind := pod.KindSignature
		if photo {
			kind = pod.KindPhoto
		}
		ct, err := pod.Sniff(kind, head)
		if err != nil {
			return
		}
		allowed := map[string]bool{"image/png": true}
		if photo {
			allowed["image/jpeg"], allowed["image/webp"] = true, true
		}
		if !allowed[ct] {
			t.Fatalf("Sniff(%s) accepted %q", kind, ct)
		}
	})
}
