package faults_test

import (
	"testing"
	"time"

	"github.com/hextrack/hextrack/faults"
)

func TestCompareArchive(t *testing.T) {
	id := func(s string) faults.ID { v, _ := faults.ParseID(s); return v }
	set := func(ids ...string) map[faults.ID]int {
		m := map[faults.ID]int{}
		for _, s := range ids {
			m[id(s)]++
		}
		return m
	}
	streams := map[string][]string{"trip:a": {"100-0", "101-0", "102-0"}, "driver:b": {"200-0"}}
	tests := []struct {
		name                             string
		archived                         map[string]map[faults.ID]int
		upTo                             string
		inStreams, missing, dup, unknown int
		complete                         bool
	}{
		{name: "all once", archived: map[string]map[faults.ID]int{"trip:a": set("100-0", "101-0", "102-0"), "driver:b": set("200-0")},
			inStreams: 4, complete: true},
		{name: "one missing", archived: map[string]map[faults.ID]int{"trip:a": set("100-0", "102-0"), "driver:b": set("200-0")},
			inStreams: 4, missing: 1},
		{name: "topic never archived", archived: map[string]map[faults.ID]int{"trip:a": set("100-0", "101-0", "102-0")},
			inStreams: 4, missing: 1},
		{name: "duplicate", archived: map[string]map[faults.ID]int{"trip:a": set("100-0", "101-0", "101-0", "102-0"), "driver:b": set("200-0")},
			inStreams: 4, dup: 1},
		{name: "trimmed before and published after the read are not unknown",
			archived:  map[string]map[faults.ID]int{"trip:a": set("99-0", "100-0", "101-0", "102-0", "103-0"), "driver:b": set("200-0")},
			inStreams: 4, complete: true},
		{name: "invented inside the stream", archived: map[string]map[faults.ID]int{"trip:a": set("100-0", "100-5", "101-0", "102-0"), "driver:b": set("200-0")},
			inStreams: 4, unknown: 1},
		{name: "bounded: later entries not required", archived: map[string]map[faults.ID]int{"trip:a": set("100-0", "101-0")},
			upTo: "101-7", inStreams: 2, complete: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := faults.CompareArchive(streams, tc.archived, id(tc.upTo))
			if r.InStreams != tc.inStreams || r.Missing != tc.missing || r.Duplicated != tc.dup || r.Unknown != tc.unknown || r.Complete() != tc.complete {
				t.Fatalf("got %s complete=%v; want in_streams=%d missing=%d dup=%d unknown=%d complete=%v",
					r, r.Complete(), tc.inStreams, tc.missing, tc.dup, tc.unknown, tc.complete)
			}
		})
	}
}

func TestIDAt(t *testing.T) {
	at := faults.IDAt(timeAt(1234))
	if !(faults.ID{MS: 1234, Seq: 99}).Less(at) || !at.Less(faults.ID{MS: 1235}) {
		t.Fatalf("IDAt(1234ms) = %s: want after every 1234-* and before 1235-0", at)
	}
}

func timeAt(ms int64) time.Time { return time.UnixMilli(ms) }
