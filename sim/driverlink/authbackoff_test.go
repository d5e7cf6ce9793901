package driverlink

import (
	"testing"
	"time"
)

// A link whose requests are refused with 401 waits 1 s, 2 s, 4 s … up to
// a minute (jittered to half of it at least) instead of retrying at once.
func TestAuthBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 50: time.Minute} {
		for range 100 {
			if d := AuthBackoff(n); d < want/2 || d > want {
				t.Fatalf("AuthBackoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}
