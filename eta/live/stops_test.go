package live_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/eta/live"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// TestStopETAs: trip.eta carries the open stops' ETAs in order,
// cumulative from the driver: to the pickup (the estimate itself), then
// on through the pickup to the drop by Config.StopLegs.
func TestStopETAs(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	r := &lineRouter{speed: 10}
	l := newLive(e.Trips, r, live.Config{Every: time.Millisecond, StopLegs: r})
	runETA(t, l)
	tr, _, drv := e.TripIn(t, trip.StatusAssigned)
	at := geo.Offset(pickup, 90, 1200)
	l.DriverMoved(context.Background(), driver.Move{DriverID: drv, TripID: tr.ID, Pos: at, TS: time.Now()})
	r.waitCalls(t, 2)
	drop := geo.Point{Lat: tr.Dropoff.Lat, Lng: tr.Dropoff.Lng}
	want := []float64{math.Round(geo.Distance(at, pickup) / 10),
		math.Round(geo.Distance(at, pickup)/10 + geo.Distance(pickup, drop)/10)}
	var got struct {
		Stops []trip.StopETA `json:"stops"`
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		evs, _, err := e.Feed.Read(context.Background(), trip.Topic(tr.ID), "0-0", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Type == trip.EventETA {
				_ = json.Unmarshal(ev.Data, &got)
			}
		}
		if len(got.Stops) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(got.Stops) != 2 || got.Stops[0].StopID != "s1" || got.Stops[1].StopID != "s2" ||
		got.Stops[0].Seconds != want[0] || math.Abs(got.Stops[1].Seconds-want[1]) > 1 {
		t.Fatalf("stops %+v, want s1 %v s, s2 %v s", got.Stops, want[0], want[1])
	}
}
