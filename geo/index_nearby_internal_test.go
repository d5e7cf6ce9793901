package geo

import (
	"testing"
)

// FuzzParseNearbyRecord: parseNearbyRecord accepts and refuses what
// parseRecord does, with the same entry.
func FuzzParseNearbyRecord(f *testing.F) {
	for _, s := range []string{
		"8939220d58bffff|1795617603485|available|41.1196372|-8.5862706",
		"8939220d58bffff|1795617603485|on_trip|41.1196372|-8.5862706|x",
		"-|1795617603485", "-|1|a|1|2", "8939220d58bffff|x|available|41|-8", "8939220d58bffff|1|||",
		"zz|1|a|1|2", "8939220d58bffff|1|a|1", "", "|||||",
	} {
		f.Add("d1", s)
	}
	f.Fuzz(func(t *testing.T, id, s string) {
		a, okA := parseRecord(id, s)
		b, okB := parseNearbyRecord(id, s)
		if okA != okB || a != b {
			t.Fatalf("%q: parseRecord %+v %v, parseNearbyRecord %+v %v", s, a, okA, b, okB)
		}
	})
}
