package faults_test

import (
	"testing"

	"github.com/hextrack/hextrack/faults"
)

func TestChecker(t *testing.T) {
	truth := []string{"100-0", "101-0", "102-0", "103-0", "104-0"}
	tests := []struct {
		name                         string
		start                        string
		observe                      []string
		reset                        string
		acked                        []string
		lost, dup, ooo, ackedMissing int
	}{
		{name: "all received", start: "100-0", observe: []string{"101-0", "102-0", "103-0", "104-0"}},
		{name: "gap", start: "100-0", observe: []string{"101-0", "103-0", "104-0"}, lost: 1},
		{name: "lost tail", start: "100-0", observe: []string{"101-0", "102-0"}, lost: 2},
		{name: "duplicate", start: "100-0", observe: []string{"101-0", "102-0", "102-0", "103-0", "104-0"}, dup: 1},
		{name: "out of order", start: "100-0", observe: []string{"101-0", "103-0", "102-0", "104-0"}, ooo: 1},
		{name: "reset excuses", start: "100-0", reset: "102-0", observe: []string{"103-0", "104-0"}},
		{name: "acked not in stream", start: "100-0", observe: []string{"101-0", "102-0", "103-0", "104-0"},
			acked: []string{"102-0", "105-0"}, ackedMissing: 1},
		{name: "before start not required", start: "102-0", observe: []string{"103-0", "104-0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := faults.NewChecker()
			c.Start("trip:t", tc.start)
			if tc.reset != "" {
				c.Reset("trip:t", tc.reset)
			}
			for _, id := range tc.observe {
				c.Observe("trip:t", id)
			}
			for _, id := range tc.acked {
				c.Acked("trip:t", id)
			}
			var r faults.Result
			c.Verify("trip:t", truth, &r)
			if r.Lost != tc.lost || r.Duplicated != tc.dup || r.OutOfOrder != tc.ooo || r.AckedMissed != tc.ackedMissing {
				t.Fatalf("lost=%d dup=%d ooo=%d acked_missing=%d, want %d %d %d %d (%v)",
					r.Lost, r.Duplicated, r.OutOfOrder, r.AckedMissed, tc.lost, tc.dup, tc.ooo, tc.ackedMissing, r.Examples)
			}
			if r.Received != len(tc.observe) {
				t.Fatalf("received %d, want %d", r.Received, len(tc.observe))
			}
		})
	}
}
