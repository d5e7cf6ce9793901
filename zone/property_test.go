package zone_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/zone"
)

// city is the box the random zones and tracks live in (about 11 × 14 km).
var city = struct{ s, w, n, e float64 }{52.45, 13.30, 52.55, 13.50}

// randomZones returns n overlapping zones: star-shaped polygons of 5–16
// vertices, 50–1500 m across, and one in ten a thin strip (15–40 m wide,
// up to 2 km long) that sparse fixes jump across.
func randomZones(t testing.TB, rng *rand.Rand, n int) []zone.Zone {
	zs := make([]zone.Zone, 0, n)
	for i := range n {
		c := geo.Point{Lat: city.s + rng.Float64()*(city.n-city.s), Lng: city.w + rng.Float64()*(city.e-city.w)}
		var ring [][2]float64
		if i%10 == 0 {
			w, l, br := 15+rng.Float64()*25, 200+rng.Float64()*1800, rng.Float64()*180
			a := geo.Offset(c, br, l/2)
			b := geo.Offset(c, br+180, l/2)
			for _, p := range []geo.Point{geo.Offset(a, br+90, w/2), geo.Offset(b, br+90, w/2), geo.Offset(b, br-90, w/2), geo.Offset(a, br-90, w/2)} {
				ring = append(ring, [2]float64{p.Lng, p.Lat})
			}
		} else {
			k := 5 + rng.IntN(12)
			r := 25 + rng.Float64()*700
			for j := range k {
				br := (float64(j) + rng.Float64()*0.8) / float64(k) * 360
				p := geo.Offset(c, br, r*(0.3+0.7*rng.Float64()))
				ring = append(ring, [2]float64{p.Lng, p.Lat})
			}
			slices.Reverse(ring) // clockwise or not: both accepted
		}
		z := mustZone(t, fmt.Sprintf("z_%016x", i), zone.KindQueue, ring, 30+float64(rng.IntN(120)))
		zs = append(zs, z)
	}
	return zs
}

// oracle: brute force over every zone, with its own geometry (ray casting
// and segment orientation tests written independently of the package).
func bruteInside(z zone.Zone, p geo.Point) bool {
	in := false
	for _, poly := range z.Polygons {
		r := poly.Outer
		c := false
		for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
			if (r[i].Lat > p.Lat) != (r[j].Lat > p.Lat) &&
				p.Lng < (r[j].Lng-r[i].Lng)*(p.Lat-r[i].Lat)/(r[j].Lat-r[i].Lat)+r[i].Lng {
				c = !c
			}
		}
		in = in || c
	}
	return in
}

func orient(a, b, c geo.Point) float64 {
	return (b.Lng-a.Lng)*(c.Lat-a.Lat) - (b.Lat-a.Lat)*(c.Lng-a.Lng)
}

func bruteSegmentHits(z zone.Zone, p, q geo.Point) bool {
	for _, poly := range z.Polygons {
		r := poly.Outer
		for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
			d1, d2 := orient(p, q, r[j]), orient(p, q, r[i])
			d3, d4 := orient(r[j], r[i], p), orient(r[j], r[i], q)
			if d1*d2 < 0 && d3*d4 < 0 {
				return true
			}
		}
	}
	return false
}

// TestStepProperty drives random tracks through 1,000 overlapping zones
// and checks every step against the brute-force oracle: the zones the
// driver is inside after each fix, the enter/exit events of each zone
// (including zones crossed between two fixes), their order, and that no
// zone is entered twice or exited without being inside.
func TestStepProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 4))
	zs := randomZones(t, rng, 1000)
	x := mustIndex(t, zs...)
	drivers, steps := 40, 250
	if testing.Short() {
		drivers, steps = 10, 100
	}
	checked, crossed := 0, 0
	for d := range drivers {
		var s zone.State
		pos := geo.Point{Lat: city.s + rng.Float64()*(city.n-city.s), Lng: city.w + rng.Float64()*(city.e-city.w)}
		inside := map[string]bool{}
		var prev *geo.Point
		ts := t0
		for step := range steps {
			// Mostly city driving (5–15 s apart, 10–150 m), sometimes a
			// sparse jump (up to 3 km) across whatever lies between.
			dist := 10 + rng.Float64()*140
			if rng.IntN(10) == 0 {
				dist = 300 + rng.Float64()*2700
			}
			if step > 0 {
				pos = geo.Offset(pos, rng.Float64()*360, dist)
				pos.Lat = math.Min(math.Max(pos.Lat, city.s), city.n)
				pos.Lng = math.Min(math.Max(pos.Lng, city.w), city.e)
			}
			ts = ts.Add(time.Duration(5+rng.IntN(10)) * time.Second)
			var evs []zone.Event
			s, evs = zone.Step(x, s, "d", zone.Fix{Pos: pos, TS: ts})
			want := map[string]bool{}
			for _, z := range zs {
				if bruteInside(z, pos) {
					want[z.ID] = true
				}
			}
			// Expected pass-throughs: outside at both fixes, segment hits
			// the boundary.
			wantPass := map[string]bool{}
			if prev != nil {
				for _, z := range zs {
					if !inside[z.ID] && !want[z.ID] && bruteSegmentHits(z, *prev, pos) {
						wantPass[z.ID] = true
					}
				}
			}
			gotPass := map[string]int{}
			last := time.Time{}
			entersAt := map[time.Time]bool{}
			for _, e := range evs {
				if e.TS.Before(last) {
					t.Fatalf("driver %d step %d: events out of time order: %v", d, step, keys(evs))
				}
				last = e.TS
				switch {
				case e.Type == zone.EventEntered && e.Reason == zone.ReasonCrossed:
					gotPass[e.Zone]++
					entersAt[e.TS] = true
				case e.Type == zone.EventExited && e.Reason == zone.ReasonCrossed:
					if gotPass[e.Zone] != 1 {
						t.Fatalf("driver %d step %d: %s exited (crossed) before entered: %v", d, step, e.Zone, keys(evs))
					}
					gotPass[e.Zone]++
				case e.Type == zone.EventEntered:
					if inside[e.Zone] {
						t.Fatalf("driver %d step %d: %s entered twice", d, step, e.Zone)
					}
					inside[e.Zone] = true
					entersAt[e.TS] = true
				case e.Type == zone.EventExited:
					if !inside[e.Zone] {
						t.Fatalf("driver %d step %d: %s exited while outside", d, step, e.Zone)
					}
					if entersAt[e.TS] {
						t.Fatalf("driver %d step %d: %s exited after an enter at the same point: %v", d, step, e.Zone, keys(evs))
					}
					delete(inside, e.Zone)
				case e.Type == zone.EventDwell:
					if !inside[e.Zone] && gotPass[e.Zone] == 0 {
						t.Fatalf("driver %d step %d: dwell in %s while outside", d, step, e.Zone)
					}
				}
			}
			for id := range want {
				if !inside[id] {
					t.Fatalf("driver %d step %d at %v: inside %s per the oracle, no zone.entered", d, step, pos, id)
				}
			}
			for id := range inside {
				if !want[id] {
					t.Fatalf("driver %d step %d at %v: outside %s per the oracle, no zone.exited", d, step, pos, id)
				}
			}
			gotIDs := make([]string, 0, len(s.Inside))
			for _, p := range s.Inside {
				gotIDs = append(gotIDs, p.Zone)
			}
			if idx := x.At(pos); !slices.Equal(idx, gotIDs) {
				t.Fatalf("driver %d step %d: state %v, index %v", d, step, gotIDs, idx)
			}
			for id := range wantPass {
				if gotPass[id] != 2 {
					t.Fatalf("driver %d step %d: segment crosses %s per the oracle: events %v", d, step, id, keys(evs))
				}
				crossed++
			}
			for id, n := range gotPass {
				if !wantPass[id] {
					t.Fatalf("driver %d step %d: %s crossed (%d events), not per the oracle", d, step, id, n)
				}
			}
			checked += len(want)
			p := pos
			prev = &p
		}
	}
	if checked == 0 || crossed == 0 {
		t.Fatalf("the tracks met no zone (%d insides, %d crossings): the test checks nothing", checked, crossed)
	}
	t.Logf("%d driver-zone insides and %d crossings checked", checked, crossed)
}

// TestIndexAtLargeAndSmallZones checks At against the brute-force oracle
// where every path of the index is taken: big star-shaped zones of 80–300
// vertices and 1–5 km (grid buckets wholly inside them answer at once,
// the rest go through the H3 cells), small ones checked directly, and
// points drawn all over the city, near edges as well as deep inside.
func TestIndexAtLargeAndSmallZones(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	zs := randomZones(t, rng, 300)
	for i := range 20 {
		c := geo.Point{Lat: city.s + rng.Float64()*(city.n-city.s), Lng: city.w + rng.Float64()*(city.e-city.w)}
		k := 80 + rng.IntN(220)
		r := 1000 + rng.Float64()*4000
		var ring [][2]float64
		for j := range k {
			br := (float64(j) + rng.Float64()*0.8) / float64(k) * 360
			p := geo.Offset(c, br, r*(0.6+0.4*rng.Float64()))
			ring = append(ring, [2]float64{p.Lng, p.Lat})
		}
		zs = append(zs, mustZone(t, fmt.Sprintf("z_big%013x", i), zone.KindServiceArea, ring, 60))
	}
	x := mustIndex(t, zs...)
	checked, inside := 0, 0
	for range 40_000 {
		p := geo.Point{Lat: city.s + rng.Float64()*(city.n-city.s), Lng: city.w + rng.Float64()*(city.e-city.w)}
		var want []string
		for _, z := range zs {
			if bruteInside(z, p) {
				want = append(want, z.ID)
			}
		}
		slices.Sort(want)
		got := x.At(p)
		if !slices.Equal(got, want) {
			t.Fatalf("At(%v) = %v, brute force %v", p, got, want)
		}
		checked++
		inside += len(want)
	}
	if inside < checked {
		t.Fatalf("only %d hits over %d points: the big zones should cover much of the city", inside, checked)
	}
}
