package ridewatch

import (
	"testing"

	"github.com/hextrack/hextrack/client"
)

func TestFrameItem(t *testing.T) {
	snap := &client.Snapshot{Trip: client.Trip{ID: "t_1", Status: "requested"}}
	for _, tc := range []struct {
		name string
		f    client.Frame
		kind ItemKind
		ok   bool
	}{
		{"snapshot", client.Frame{ID: "3-0", Type: "snapshot", Snapshot: snap}, ItemSnapshot, true},
		{"reset", client.Frame{ID: "4-0", Type: "reset", Snapshot: snap}, ItemReset, true},
		{"durable event", client.Frame{ID: "5-0", Type: "trip.status", Event: client.Event{ID: "5-0", Type: "trip.status"}}, ItemEvent, true},
		{"location", client.Frame{Type: "trip.location", Event: client.Event{Type: "trip.location", Data: []byte(`{"seq":3,"lat":1,"lng":2}`)}}, ItemLocation, true},
		{"live-only other", client.Frame{Type: "trip.typing", Event: client.Event{Type: "trip.typing"}}, 0, false},
		{"snapshot frame without a body", client.Frame{Type: "snapshot"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it, ok := frameItem(tc.f)
			if ok != tc.ok || (ok && it.Kind != tc.kind) {
				t.Fatalf("frameItem = kind %v ok %v, want kind %v ok %v", it.Kind, ok, tc.kind, tc.ok)
			}
			if it.Kind == ItemSnapshot && ok && it.Snapshot.FeedPosition != tc.f.ID {
				t.Errorf("feed position %q, want the frame's id %q", it.Snapshot.FeedPosition, tc.f.ID)
			}
			if it.Kind == ItemLocation && ok && it.Location.Seq != 3 {
				t.Errorf("location %+v", it.Location)
			}
		})
	}
}
