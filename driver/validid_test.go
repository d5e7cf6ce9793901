package driver

import (
	"regexp"
	"strings"
	"testing"
)

// idOracle is the pattern ValidID implements byte by byte.
var idOracle = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

func TestValidIDMatchesPattern(t *testing.T) {
	cases := []string{"", "d1", "driver-42", "a.b:c_d-e", "d 1", "d/1", "é", "d\n", "d\x00",
		strings.Repeat("a", 64), strings.Repeat("a", 65), "{x}", "*", "d1?"}
	for c := 0; c < 256; c++ {
		cases = append(cases, "x"+string(rune(c)), string([]byte{byte(c)}))
	}
	for _, id := range cases {
		if got, want := ValidID(id), idOracle.MatchString(id); got != want {
			t.Errorf("ValidID(%q) = %v, pattern says %v", id, got, want)
		}
	}
}

func FuzzValidID(f *testing.F) {
	for _, s := range []string{"d1", "", "a.b:c", "d 1", strings.Repeat("z", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ValidID(id), idOracle.MatchString(id); got != want {
			t.Fatalf("ValidID(%q) = %v, pattern says %v", id, got, want)
		}
	})
}
