package blob

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors of a Store.
var (
	// ErrNotFound: no object under the key.
	ErrNotFound = errors.New("blob not found")
	// ErrInvalidKey: the key is not a valid object key (ValidKey).
	ErrInvalidKey = errors.New("invalid blob key")
)

// Store keeps objects by key. Implementations are safe for concurrent use.
type Store interface {
	// Put stores r's bytes under key with contentType, replacing any
	// object there atomically. size is the expected length, or -1 when
	// unknown; a reader that ends short of it, or fails, stores nothing
	// and Put returns the reader's error wrapped.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Get opens the object under key (ErrNotFound: none); the caller
	// closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Delete removes the object under key; a missing one is not an error.
	Delete(ctx context.Context, key string) error
}

// Info describes a stored object.
type Info struct {
	Size        int64
	ContentType string
	ModTime     time.Time
}

// MaxKeyLen is the longest key.
const MaxKeyLen = 512

// ValidKey reports whether key is a valid object key: 1..MaxKeyLen bytes
// of slash-separated segments, each 1..128 bytes of ASCII letters, digits,
// '.', '_' and '-' starting with a letter or digit (so neither "." nor
// "..", nor a hidden or temporary file).
func ValidKey(key string) bool {
	if key == "" || len(key) > MaxKeyLen {
		return false
	}
	seg := 0
	for i := 0; i < len(key); i++ {
		b := key[i]
		switch {
		case b == '/':
			if seg == 0 {
				return false
			}
			seg = 0
			continue
		case alnum(b):
		case b == '.' || b == '_' || b == '-':
			if seg == 0 {
				return false
			}
		default:
			return false
		}
		seg++
		if seg > 128 {
			return false
		}
	}
	return seg > 0
}

func alnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}
