package geo

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// splitRecord is parseRecord written plainly (SplitN), the oracle its
// allocation-free reading is fuzzed against.
func splitRecord(id, s string) (Entry, bool) {
	parts := strings.SplitN(s, "|", 5)
	if len(parts) != 5 || parts[0] == "-" {
		return Entry{}, false
	}
	c, err := ParseCell(parts[0])
	if err != nil {
		return Entry{}, false
	}
	ms, err1 := strconv.ParseInt(parts[1], 10, 64)
	lat, err2 := strconv.ParseFloat(parts[3], 64)
	lng, err3 := strconv.ParseFloat(parts[4], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Entry{}, false
	}
	return Entry{ID: id, Pos: Point{Lat: lat, Lng: lng}, Cell: c, Seen: time.UnixMilli(ms), Status: parts[2]}, true
}

// FuzzParseRecord: parseRecord accepts and refuses what splitRecord does,
// with the same entry.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"8939220d58bffff|1795617603485|available|41.1196372|-8.5862706",
		"8939220d58bffff|1795617603485|on_trip|41.1196372|-8.5862706|x",
		"-|1795617603485", "-|1|a|1|2", "8939220d58bffff|x|available|41|-8", "8939220d58bffff|1|||",
		"zz|1|a|1|2", "8939220d58bffff|1|a|1", "", "|||||",
	} {
		f.Add("d1", s)
	}
	f.Fuzz(func(t *testing.T, id, s string) {
		a, okA := splitRecord(id, s)
		b, okB := parseRecord(id, s)
		if okA != okB || a != b {
			t.Fatalf("%q: splitRecord %+v %v, parseRecord %+v %v", s, a, okA, b, okB)
		}
	})
}
