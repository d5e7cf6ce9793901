package zonecheck

import (
	"strings"
	"testing"
	"time"
)

// square is a 0.01° zone around (0.005, 0.005).
var square = Zone{ID: "z1", Ring: []Point{{0, 0}, {0, 0.01}, {0.01, 0.01}, {0.01, 0}, {0, 0}}}

func at(s int) time.Time { return time.Unix(1_700_000_000+int64(s), 0) }

func ev(id, typ string, s int, reason string) Event {
	return Event{ID: id, Type: typ, Zone: "z1", Driver: "d", TS: at(s), Reason: reason}
}

// A driver walks in, then jumps across the zone between two fixes
// outside, then comes back in: entered, exited, entered+exited (cut),
// entered.
func drive(o *Oracle) {
	o.Fix("d", 1, at(0), Point{-0.005, 0.005}) // out
	o.Fix("d", 2, at(1), Point{0.005, 0.005})  // in: entered
	o.Fix("d", 3, at(2), Point{0.02, 0.005})   // out: exited
	o.Fix("d", 4, at(3), Point{0.02, -0.001})  // out
	o.Fix("d", 5, at(4), Point{-0.001, 0.02})  // out, the segment cuts the corner: entered+exited
	o.Fix("d", 6, at(5), Point{0.002, 0.002})  // in: entered
}

func TestCheckFindsEverything(t *testing.T) {
	o := NewOracle()
	drive(o)
	evs := []Event{
		ev("1-0", Entered, 1, "fix"), ev("2-0", Exited, 2, "fix"),
		ev("4-0", Entered, 4, "crossed"), ev("4-1", Exited, 4, "crossed"),
		ev("5-0", Entered, 5, "fix"),
		// Set offline inside, then back: an extra pair no fix shows.
		ev("6-0", Exited, 6, "offline"), ev("7-0", Entered, 7, "fix"),
		ev("8-0", Dwell, 8, "dwell"),
		ev("9-0", Entered, 9, "fix"), // another driver's? no: same driver, out of order
	}
	evs[8].Driver = "other" // not the run's driver: ignored
	r := o.Check([]Zone{square}, evs)
	if r.Owed != 5 || r.Found != 5 || r.Missing != 0 || r.OutOfOrder != 0 || r.Extra != 2 || r.Dwell != 1 || r.Events != 8 {
		t.Fatalf("report %+v", r)
	}
}

func TestCheckFindsMissingAndDisorder(t *testing.T) {
	o := NewOracle()
	drive(o)
	// The crossing pair is missing and two entries come in a row.
	evs := []Event{
		ev("1-0", Entered, 1, "fix"), ev("2-0", Exited, 2, "fix"),
		ev("5-0", Entered, 5, "fix"), ev("5-1", Entered, 5, "fix"),
	}
	r := o.Check([]Zone{square}, evs)
	if r.Missing == 0 || r.OutOfOrder != 1 {
		t.Fatalf("report %+v", r)
	}
	if len(r.Examples) == 0 || !strings.Contains(strings.Join(r.Examples, "\n"), "out of order") {
		t.Fatalf("examples %v", r.Examples)
	}
	// An event stamped after the fix that showed it does not count.
	late := []Event{ev("1-0", Entered, 3, "fix")}
	o2 := NewOracle()
	o2.Fix("d", 1, at(0), Point{-0.005, 0.005})
	o2.Fix("d", 2, at(1), Point{0.005, 0.005})
	if r := o2.Check([]Zone{square}, late); r.Found != 0 || r.Missing != 1 {
		t.Fatalf("late event: %+v", r)
	}
	// A fix the server never got (seq 2 > Upto 1) owes nothing.
	o2.Upto("d", 1)
	if r := o2.Check([]Zone{square}, nil); r.Owed != 0 || r.Missing != 0 {
		t.Fatalf("unsent fix: %+v", r)
	}
}
