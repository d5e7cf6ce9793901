package tripredis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// TestLifecycleTable tries every action by every role in every status and
// checks the outcome against Rules: allowed → new status, version+1 and
// exactly one event of the right type; the role may act but not in this
// status → 409 with the current status; otherwise 403.
func TestLifecycleTable(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	actions := []string{trip.ActAccept, trip.ActArrived, trip.ActPickup, trip.ActComplete, trip.ActCancel,
		trip.ActDecline, trip.ActReassign, trip.ActExpire, trip.ActPaid, trip.ActUnpaid, trip.ActDropoff}
	roles := []string{trip.RoleRider, trip.RoleDriver, trip.RoleOps, trip.RoleSystem}
	for _, st := range trip.Statuses {
		for _, act := range actions {
			for _, role := range roles {
				t.Run(st+"/"+act+"/"+role, func(t *testing.T) {
					tr, ra, drv := e.TripIn(t, st)
					a := trip.Actor{Role: role}
					switch role {
					case trip.RoleRider:
						a = ra
					case trip.RoleDriver:
						a.ID = drv
						if a.ID == "" {
							a.ID = e.Driver(t) // nobody assigned: some available driver
						}
					case trip.RoleSystem:
						if act == trip.ActAccept {
							a.ID = e.Driver(t)
						}
					}
					before := e.StreamLen(t, tr.ID)
					var snap trip.Snapshot
					var err error
					if act == trip.ActDropoff {
						snap, err = e.Trips.ChangeDropoff(ctx, tr.ID, a, trip.Place{Lat: 52.49, Lng: 13.37, Address: "__VERSION__ st"}, 0)
					} else {
						snap, err = e.Trips.Act(ctx, tr.ID, a, act, "")
					}
					to, allowed := trip.Allowed(act, role, st)
					mayEver := false
					for _, r := range trip.Rules {
						mayEver = mayEver || r.Action == act && r.Role == role
					}
					owner := role != trip.RoleDriver || drv == a.ID || act == trip.ActAccept ||
						act == trip.ActDecline && st == trip.StatusRequested
					noop := role == trip.RoleDriver && act == trip.ActDecline && st == trip.StatusRequested
					after := e.StreamLen(t, tr.ID)
					switch {
					case !mayEver || !owner:
						if !errors.Is(err, trip.ErrForbidden) {
							t.Fatalf("want ErrForbidden, got %v", err)
						}
						if after != before {
							t.Fatalf("refused action appended %d events", after-before)
						}
					case noop:
						if err != nil || snap.Trip.Status != st || after != before {
							t.Fatalf("decline of a requested trip: err %v, status %s, events +%d", err, snap.Trip.Status, after-before)
						}
					case allowed:
						if err != nil {
							t.Fatalf("allowed transition failed: %v", err)
						}
						if snap.Trip.Status != to || snap.Version != tr.Version+1 {
							t.Fatalf("got %s v%d, want %s v%d", snap.Trip.Status, snap.Version, to, tr.Version+1)
						}
						if after != before+1 {
							t.Fatalf("want exactly one event, got %d", after-before)
						}
						ev := e.LastEvent(t, tr.ID)
						wantType := trip.EventStatus
						switch {
						case act == trip.ActDropoff:
							wantType = trip.EventAddressChanged
						case to == trip.StatusCancelled:
							wantType = trip.EventCancelled
						case to == trip.StatusAssigned:
							wantType = trip.EventAssigned
						}
						if ev.Type != wantType || !strings.Contains(string(ev.Data), fmt.Sprintf(`"version":%d`, snap.Version)) ||
							!strings.Contains(string(ev.Data), `"from":"`+st+`"`) {
							t.Fatalf("event %s %s", ev.Type, ev.Data)
						}
						if snap.FeedPosition != ev.ID {
							t.Fatalf("snapshot position %s, last event %s", snap.FeedPosition, ev.ID)
						}
					default:
						var te *trip.TransitionError
						if !errors.As(err, &te) || !errors.Is(err, trip.ErrInvalidTransition) || te.Current != st {
							t.Fatalf("want TransitionError with current %s, got %v", st, err)
						}
						if after != before {
							t.Fatalf("refused transition appended %d events", after-before)
						}
					}
				})
			}
		}
	}
}
