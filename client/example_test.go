package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/hextrack/hextrack/client"
)

// A rider creates a trip and follows it until it ends. WatchTrip keeps the
// stream up by itself (SSE, or long-polling behind a proxy that buffers),
// so the loop only reads frames. (Compiled, not run: it needs a server,
// here a dev-mode one started by `make run`.)
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the stream's goroutine
	anon := client.New("http://localhost:8080", "", nil)
	tok, err := anon.DevToken(ctx, "rider", "r1", time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	c := anon.WithToken(tok)
	snap, err := c.CreateTrip(ctx, client.CreateTripRequest{
		Pickup:  client.Place{Lat: 41.1496, Lng: -8.6109},
		Dropoff: client.Place{Lat: 41.1600, Lng: -8.6200},
	}, "my-first-trip")
	if err != nil {
		var ae *client.Error
		if errors.As(err, &ae) {
			log.Fatalf("refused: %d %s", ae.Status, ae.Code)
		}
		log.Fatal(err)
	}
	s := c.WatchTrip(ctx, snap.Trip.ID, "")
	for f := range s.C {
		switch {
		case f.Snapshot != nil: // "snapshot" first, "reset" if continuity was lost
			fmt.Println(f.Type, f.Snapshot.Trip.Status)
		case f.ID != "": // a durable event, each once and in order
			fmt.Println(f.ID, f.Type, "over", f.Transport)
		default: // live-only: trip.location, trip.eta
		}
		if f.Type == "trip.cancelled" {
			break
		}
	}
	// A stream that ended on its own says why; resume later after
	// s.LastID() with WatchTrip(ctx, id, s.LastID()).
	if err := s.Err(); err != nil {
		log.Print(err)
	}
}

// Behind a proxy known to buffer, make the fallback quicker; or keep to
// SSE only, as a browser's EventSource does.
func ExampleClient_WithWatch() {
	c := client.New("http://localhost:8080", "token", nil)
	quick := c.WithWatch(client.WatchConfig{FirstByte: time.Second, RetrySSE: 5 * time.Minute})
	sseOnly := c.WithWatch(client.WatchConfig{SSEOnly: true})
	_, _ = quick, sseOnly
}
