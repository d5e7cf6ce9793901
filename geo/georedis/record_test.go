package georedis

import (
	"testing"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// TestParseRecord: parseRecord accepts a well-formed live record with its
// entry and refuses tombstones and malformed records (the cases the fuzz
// target seeded when parseRecord was hand-written).
func TestParseRecord(t *testing.T) {
	cell, err := geo.ParseCell("8939220d58bffff")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, rec string
		want      geo.Entry
		ok        bool
	}{
		{"live", "8939220d58bffff|1795617603485|available|41.1196372|-8.5862706",
			geo.Entry{ID: "d1", Pos: geo.Point{Lat: 41.1196372, Lng: -8.5862706}, Cell: cell,
				Seen: time.UnixMilli(1795617603485), Status: "available"}, true},
		{"no status", "8939220d58bffff|1||1|2",
			geo.Entry{ID: "d1", Pos: geo.Point{Lat: 1, Lng: 2}, Cell: cell, Seen: time.UnixMilli(1)}, true},
		{"extra field", "8939220d58bffff|1795617603485|on_trip|41.1196372|-8.5862706|x", geo.Entry{}, false},
		{"tombstone", "-|1795617603485", geo.Entry{}, false},
		{"tombstone with fields", "-|1|a|1|2", geo.Entry{}, false},
		{"bad ms", "8939220d58bffff|x|available|41|-8", geo.Entry{}, false},
		{"empty position", "8939220d58bffff|1|||", geo.Entry{}, false},
		{"bad cell", "zz|1|a|1|2", geo.Entry{}, false},
		{"four fields", "8939220d58bffff|1|a|1", geo.Entry{}, false},
		{"empty", "", geo.Entry{}, false},
		{"separators only", "|||||", geo.Entry{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseRecord("d1", tc.rec)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("parseRecord(%q) = %+v %v, want %+v %v", tc.rec, got, ok, tc.want, tc.ok)
			}
		})
	}
}
