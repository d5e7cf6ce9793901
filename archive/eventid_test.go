package archive_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hextrack/hextrack/archive"
)

// FuzzParseEventID: an "after" position from a client either fails with
// ErrInvalidCursor or is an ID the archive prints back as it came
// ("<ms>" gains its "-0").
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"1790000000000-0", "0", "1-18446744073709551615", "01-1", "9223372036854775807-9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := archive.ParseEventID(s)
		if err != nil {
			if !errors.Is(err, archive.ErrInvalidCursor) {
				t.Fatalf("ParseEventID(%q): %v is not ErrInvalidCursor", s, err)
			}
			return
		}
		want := s
		if !strings.Contains(s, "-") {
			want += "-0"
		}
		if id.String() != want || id.Ms < 0 || id.Seq < 0 {
			t.Fatalf("ParseEventID(%q) = %v, prints %q", s, id, id.String())
		}
	})
}
