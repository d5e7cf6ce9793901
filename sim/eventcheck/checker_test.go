package eventcheck_test

import (
	"slices"
	"testing"

	"github.com/hextrack/hextrack/sim/eventcheck"
)

func TestChecker(t *testing.T) {
	truth := []string{"100-0", "100-1", "105-0", "110-0", "120-0", "130-0"}
	for _, tc := range []struct {
		name     string
		start    string
		recv     []string
		reset    string // position of a reset received after recv[0], if any
		finished bool
		lost     []string
		dup, ooo int64
	}{
		{name: "clean", recv: truth, finished: true},
		{name: "gap and duplicate", recv: []string{"100-0", "100-1", "100-1", "110-0", "120-0", "130-0"},
			finished: true, lost: []string{"105-0"}, dup: 1},
		{name: "two gaps, three duplicates", recv: []string{"100-0", "100-0", "105-0", "105-0", "105-0", "130-0"},
			finished: true, lost: []string{"100-1", "110-0", "120-0"}, dup: 3},
		{name: "out of order", recv: []string{"100-0", "105-0", "100-1", "110-0", "120-0", "130-0"},
			finished: true, ooo: 1},
		{name: "events before the start are not expected", start: "105-0",
			recv: []string{"110-0", "120-0", "130-0"}, finished: true},
		{name: "a gap right after the start", start: "105-0",
			recv: []string{"120-0", "130-0"}, finished: true, lost: []string{"110-0"}},
		{name: "a reset excuses what it replaced", recv: []string{"100-0", "120-0", "130-0"},
			reset: "110-0", finished: true},
		{name: "live topic: the tail may be in flight", recv: []string{"100-0", "100-1", "110-0"},
			lost: []string{"105-0"}},
		{name: "finished topic: a missing tail is lost", recv: []string{"100-0", "100-1", "105-0", "110-0"},
			finished: true, lost: []string{"120-0", "130-0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c eventcheck.Checker
			c.Start("trip:t1", tc.start)
			for i, id := range tc.recv {
				c.Observe("trip:t1", id)
				if i == 0 && tc.reset != "" {
					c.Reset("trip:t1", tc.reset)
				}
			}
			if tc.finished {
				c.Finish("trip:t1")
			}
			res := c.Verify("trip:t1", truth)
			if !slices.Equal(res.Lost, tc.lost) || res.Duplicated != tc.dup || res.OutOfOrder != tc.ooo {
				t.Fatalf("lost %v dup %d ooo %d; want lost %v dup %d ooo %d", res.Lost, res.Duplicated, res.OutOfOrder, tc.lost, tc.dup, tc.ooo)
			}
			tot := c.Totals()
			if tot.Lost != int64(len(tc.lost)) || tot.Duplicated != tc.dup || tot.Received != int64(len(tc.recv)) || tot.Checked != 1 {
				t.Fatalf("totals %+v", tot)
			}
			// Verifying again (a longer history read later) replaces, not adds.
			c.Verify("trip:t1", truth)
			if c.Totals().Lost != int64(len(tc.lost)) {
				t.Fatalf("re-verify changed lost to %d", c.Totals().Lost)
			}
		})
	}
}

func TestCheckerTopicsIndependent(t *testing.T) {
	var c eventcheck.Checker
	c.Start("a", "")
	c.Start("b", "")
	c.Observe("a", "1-0")
	c.Observe("b", "1-0")
	c.Observe("b", "2-0")
	c.Finish("a")
	c.Finish("b")
	if r := c.Verify("a", []string{"1-0", "2-0"}); len(r.Lost) != 1 || r.Duplicated != 0 {
		t.Fatalf("a: %+v", r)
	}
	if r := c.Verify("b", []string{"1-0", "2-0"}); len(r.Lost) != 0 || r.Duplicated != 0 {
		t.Fatalf("b: %+v", r)
	}
	if tot := c.Totals(); tot.Lost != 1 || tot.Checked != 2 || tot.Unverified != 0 {
		t.Fatalf("totals %+v", tot)
	}
}

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"1-2", true}, {"", true}, {"0", true}, {"17", true}, {"a-1", false}, {"1-b", false}, {"-1", false}} {
		if _, ok := eventcheck.ParseID(tc.in); ok != tc.ok {
			t.Errorf("ParseID(%q) ok=%v", tc.in, ok)
		}
	}
	a, _ := eventcheck.ParseID("5-1")
	b, _ := eventcheck.ParseID("10-0")
	if !a.Less(b) || b.Less(a) {
		t.Fatal("order")
	}
}
