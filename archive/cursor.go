package archive

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// Cursor is a position in a newest-first list ordered by (time, id), both
// descending: the last item of a page. The next page holds the items
// strictly after it in that order, so an item inserted while a client
// pages (newer, or at a position already passed) is never returned twice,
// and no item present when paging started is skipped. This holds because
// the ordering key of an item never changes (a trip's CreatedAt is kept
// from its first copy).
//
// A cursor is opaque to clients: base64url (no padding) of a version byte,
// the time in unix microseconds (8 bytes, big endian) and the ID. It is
// not signed: it carries nothing a client may not know, and a forged one
// only moves where a page starts within what the query already allows.
type Cursor struct {
	Time time.Time
	ID   string
}

const (
	cursorV1     = 1
	maxCursorLen = 128 // base64 of 1+8+64 bytes is 98
)

var cursorEncoding = base64.RawURLEncoding.Strict()

// IsZero reports whether c is the zero cursor: the first page.
func (c Cursor) IsZero() bool { return c.ID == "" }

// Encode returns the cursor's opaque string ("" for the zero cursor).
func (c Cursor) Encode() string {
	if c.IsZero() {
		return ""
	}
	b := make([]byte, 9, 9+len(c.ID))
	b[0] = cursorV1
	binary.BigEndian.PutUint64(b[1:], uint64(Micros(c.Time)))
	return cursorEncoding.EncodeToString(append(b, c.ID...))
}

// DecodeCursor parses a cursor from Encode; "" is the zero cursor. Anything
// else that Encode could not have produced is ErrInvalidCursor.
func DecodeCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	if len(s) > maxCursorLen {
		return Cursor{}, fmt.Errorf("%w: too long", ErrInvalidCursor)
	}
	b, err := cursorEncoding.DecodeString(s)
	// The length check refuses the CR and LF the decoder skips: one
	// cursor, one spelling.
	if err != nil || len(b) < 10 || b[0] != cursorV1 || cursorEncoding.EncodedLen(len(b)) != len(s) {
		return Cursor{}, fmt.Errorf("%w: %q is not a cursor of this archive", ErrInvalidCursor, clip(s))
	}
	us := int64(binary.BigEndian.Uint64(b[1:9]))
	id := string(b[9:])
	if us < 0 || !ValidID(id) {
		return Cursor{}, fmt.Errorf("%w: %q is not a cursor of this archive", ErrInvalidCursor, clip(s))
	}
	return Cursor{Time: Time(us), ID: id}, nil
}
