package archive_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []archive.Cursor{
		{Time: time.Date(2026, 11, 20, 8, 0, 0, 123456000, time.UTC), ID: "t_1"},
		{Time: time.Unix(0, 0), ID: "a"},
		{Time: time.Date(2200, 1, 1, 0, 0, 0, 999999000, time.FixedZone("x", 3600)), ID: strings.Repeat("Z", 64)},
	} {
		s := c.Encode()
		got, err := archive.DecodeCursor(s)
		if err != nil || !got.Time.Equal(c.Time) || got.ID != c.ID {
			t.Errorf("DecodeCursor(Encode(%v)) = %v, %v", c, got, err)
		}
		if strings.ContainsAny(s, "+/=") {
			t.Errorf("cursor %q is not URL-safe", s)
		}
	}
	if got, err := archive.DecodeCursor(""); err != nil || !got.IsZero() {
		t.Errorf(`DecodeCursor("") = %v, %v; want the zero cursor`, got, err)
	}
	if s := (archive.Cursor{}).Encode(); s != "" {
		t.Errorf("zero cursor encodes as %q", s)
	}
}

func TestCursorInvalid(t *testing.T) {
	good := archive.Cursor{Time: time.Unix(1790000000, 0), ID: "t1"}.Encode()
	for _, s := range []string{
		"x", "!!!!", good[:len(good)-1], good + "A", strings.Repeat("A", 200),
		"AgAAAAAAAAAAdDE", // version 2
		"AQAAAAAAAAAA",    // no ID
		"Af__________dDE", // negative time
		archive.Cursor{Time: time.Unix(1, 0), ID: "t1"}.Encode()[:12] + "ICE", // ID with a space
	} {
		if c, err := archive.DecodeCursor(s); !errors.Is(err, archive.ErrInvalidCursor) {
			t.Errorf("DecodeCursor(%q) = %v, %v; want ErrInvalidCursor", s, c, err)
		}
	}
}

// FuzzDecodeCursor: any string either fails with ErrInvalidCursor or
// decodes to a cursor that survives a round trip.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(archive.Cursor{Time: time.Unix(1790000000, 5000), ID: "t_1"}.Encode())
	f.Add("")
	f.Add("AQAAAAAAAAAAdDE")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := archive.DecodeCursor(s)
		if err != nil {
			if !errors.Is(err, archive.ErrInvalidCursor) {
				t.Fatalf("DecodeCursor(%q): %v is not ErrInvalidCursor", s, err)
			}
			return
		}
		back, err := archive.DecodeCursor(c.Encode())
		if err != nil || !back.Time.Equal(c.Time) || back.ID != c.ID {
			t.Fatalf("round trip of %q: %v → %v, %v", s, c, back, err)
		}
		if s != "" && c.Encode() != s {
			t.Fatalf("cursor %q is not canonical: re-encodes as %q", s, c.Encode())
		}
	})
}
