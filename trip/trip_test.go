package trip_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hextrack/hextrack/trip"
)

// TestValidID: ValidID is the pattern it replaced.
func TestValidID(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	for _, id := range []string{"", "t", "t_1-A9", strings.Repeat("a", 64), strings.Repeat("a", 65), "t 1", "t.1",
		"t/1", "é", "t\n", "\xff", "t:1", "-", "_", "Z", "z", "0", "9", "[", "`", "{", "@"} {
		if got, want := trip.ValidID(id), pattern.MatchString(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}
