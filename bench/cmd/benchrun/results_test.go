package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestKeepOthers: a run of one scenario replaces its rows in place and
// keeps every other row and profile of the results file.
func TestKeepOthers(t *testing.T) {
	out := filepath.Join(t.TempDir(), "results.json")
	old := Results{Scenarios: []Scenario{{Name: "1 ingest WS", Value: 1}, {Name: "8 zones", Value: 2}, {Name: "8 zones", Value: 3}, {Name: "nats", Value: 4}},
		Profiles: map[string]any{"ingest-ws": "top", "zones": "old"}, Machine: map[string]any{"loadavg_before_ingest": "1 1 1", "cpus": 2}}
	b, _ := json.Marshal(old)
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{out: out, res: Results{Scenarios: []Scenario{{Name: "8 zones", Value: 9}, {Name: "9 new", Value: 10}},
		Profiles: map[string]any{"zones": "new"}, Machine: map[string]any{"loadavg_before_zones": "2 2 2", "cpus": 2}}}
	if err := r.keepOthers(); err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, s := range r.res.Scenarios {
		got = append(got, s.Value)
	}
	want := []float64{1, 9, 4, 10}
	if len(got) != len(want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rows %v, want %v", got, want)
		}
	}
	if r.res.Profiles["ingest-ws"] != "top" || r.res.Profiles["zones"] != "new" {
		t.Fatalf("profiles %v", r.res.Profiles)
	}
	if r.res.Machine["loadavg_before_ingest"] != "1 1 1" || r.res.Machine["loadavg_before_zones"] != "2 2 2" {
		t.Fatalf("machine %v", r.res.Machine)
	}
}
