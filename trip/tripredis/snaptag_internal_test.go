package tripredis

import (
	"strconv"
	"testing"

	"github.com/hextrack/hextrack/trip"
)

// TestTagETARouteVersion: the tag's route version is decodeETA's, also for
// stored values that don't encode as JSON (NaN, a year past 9999), for
// another leg and for no ETA; and the field indexes match tagFields.
func TestTagETARouteVersion(t *testing.T) {
	if len(tagFields) != tfN || tagFields[tfETARV] != "eta_rv" || tagFields[tfLocTS] != "loc_ts" {
		t.Fatalf("tagFields and the tf* indexes disagree: %v", tagFields)
	}
	far := strconv.FormatInt(300_000*365*24*3600*1000, 10) // year ~302000
	for _, c := range []struct {
		name, status, leg, at, ms, secs, dist, rv string
	}{
		{"pickup", trip.StatusAssigned, trip.LegPickup, "1700000000000", "1700000000000", "120.5", "800", "7"},
		{"dropoff", trip.StatusInProgress, trip.LegDropoff, "1700000000000", "1700000000000", "60", "500", "3"},
		{"other leg", trip.StatusInProgress, trip.LegPickup, "1700000000000", "1700000000000", "60", "500", "3"},
		{"no leg", trip.StatusRequested, "", "", "", "", "", ""},
		{"no eta", trip.StatusAssigned, "", "", "", "", "", ""},
		{"NaN seconds", trip.StatusAssigned, trip.LegPickup, "1700000000000", "1700000000000", "NaN", "500", "4"},
		{"Inf distance", trip.StatusAssigned, trip.LegPickup, "1700000000000", "1700000000000", "60", "+Inf", "4"},
		{"far arrival", trip.StatusAssigned, trip.LegPickup, far, "1700000000000", "60", "500", "5"},
		{"garbage", trip.StatusArrived, trip.LegPickup, "x", "y", "z", "w", "9"},
	} {
		m := map[string]string{"eta_leg": c.leg, "eta_at": c.at, "eta_ms": c.ms, "eta_s": c.secs, "eta_m": c.dist, "eta_rv": c.rv}
		_, want := decodeETA(m, c.status)
		if got := tagETARouteVersion(c.status, c.leg, c.at, c.ms, c.secs, c.dist, c.rv); got != want {
			t.Errorf("%s: route version %d, decodeETA's %d", c.name, got, want)
		}
	}
}
