package trip

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// locationData is written by hand: it must be byte for byte what
// json.Marshal makes of the same value.
func TestLocationDataIsJSONMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 41.1579123, -8.6291, 1e-7, -3.2e-9, 1e21, 1.5e22, 123456789.125,
		0.000001, 1e20, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1)}
	ids := []string{"t_0123456789abcdef", "d-1.x:y_Z", "", "a<b", "q\"uote", "back\\slash", "tab\t", "é", "a&b", "\u2028"}
	pick := func() float64 {
		switch rng.IntN(3) {
		case 0:
			return floats[rng.IntN(len(floats))]
		case 1:
			return (rng.Float64() - 0.5) * 360
		}
		return math.Ldexp(rng.Float64(), rng.IntN(160)-80)
	}
	times := []time.Time{time.UnixMilli(1795617718249).UTC(), time.Unix(0, 0).UTC(), {},
		time.Date(2026, 11, 25, 14, 0, 0, 120000000, time.FixedZone("x", 3600)), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range 20000 {
		l := &Location{Seq: rng.Int64N(1 << 40), DriverID: ids[rng.IntN(len(ids))], Lat: pick(), Lng: pick(),
			TS: times[rng.IntN(len(times))].Add(time.Duration(rng.Int64N(1e12)))}
		if rng.IntN(2) == 0 {
			h := pick()
			l.Heading = &h
		}
		if rng.IntN(2) == 0 {
			sp := pick()
			l.Speed = &sp
		}
		tr := ids[rng.IntN(len(ids))]
		want, _ := json.Marshal(struct {
			TripID string `json:"trip_id"`
			*Location
		}{tr, l})
		if got := locationData(tr, l); string(got) != string(want) {
			t.Fatalf("case %d: %+v\ngot  %s\nwant %s", i, l, got, want)
		}
	}
}
