package faults

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/client"
)

// riderState is one rider of a Load: its trip watched over SSE, a chat
// message every LoadConfig.Every and a dropoff change every fifth time.
type riderState struct {
	id, trip, topic string
	c               *client.Client
	stream          *client.Stream
	recovered       atomic.Int64 // unix nanos of the first event published after the mark (0: not yet)
	mark            atomic.Int64
	assigned        atomic.Bool
}

// start creates the rider's trip and watches it; then the rider reads its
// stream and posts until run ends.
func (r *riderState) start(ctx context.Context, run *loadRun, lat, lng float64) error {
	tok, err := run.token(ctx, "rider", r.id)
	if err != nil {
		return err
	}
	r.c = client.New(run.cfg.Base, tok, run.pub.HTTPClient())
	var snap client.Snapshot
	err = run.retry(ctx, func() error {
		var err error
		snap, err = r.c.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride", Payment: "cash",
			Pickup: client.Place{Lat: lat, Lng: lng}, Dropoff: client.Place{Lat: lat + 0.01, Lng: lng + 0.01}}, "create-"+r.id)
		return err
	})
	if err != nil {
		return fmt.Errorf("rider %s create: %w", r.id, err)
	}
	r.trip = snap.Trip.ID
	r.topic = "trip:" + r.trip
	r.stream = r.c.WatchTrip(run.ctx, r.trip, "")
	run.wg.Go(func() { r.read(run.check) })
	run.wg.Go(func() { r.post(run, lat, lng) })
	return nil
}

// read hands every durable delivery of the rider's stream to check and
// notes when the trip is assigned and when the rider recovered.
func (r *riderState) read(check *Checker) {
	for f := range r.stream.C {
		switch f.Type {
		case "snapshot":
			check.Start(r.topic, f.ID)
			if f.Snapshot != nil && f.Snapshot.Trip.DriverID != "" {
				r.assigned.Store(true)
			}
			continue
		case "reset":
			check.Reset(r.topic, f.ID)
			continue
		}
		if f.ID == "" {
			continue // live-only (trip.location), heartbeat-like frames
		}
		check.Observe(r.topic, f.ID)
		if f.Event.Type == "trip.assigned" {
			r.assigned.Store(true)
		}
		if m := r.mark.Load(); m > 0 && r.recovered.Load() == 0 && f.Event.TS.UnixNano() > m {
			r.recovered.Store(time.Now().UnixNano())
		}
	}
}

// post sends a chat message every run.cfg.Every while run.post is set (a
// dropoff change every fifth time), retrying each until acknowledged, and
// tells the Checker of every acknowledged event.
func (r *riderState) post(run *loadRun, lat, lng float64) {
	t := time.NewTicker(run.cfg.Every)
	defer t.Stop()
	for n := 0; ; {
		select {
		case <-run.ctx.Done():
			return
		case <-t.C:
		}
		run.busy.Add(1)
		if !run.post.Load() {
			run.busy.Add(-1)
			continue
		}
		n++
		if n%5 == 0 {
			// A dropoff change: a durable trip event and a driver command.
			p := client.Place{Lat: lat + 0.01 + 0.0001*float64(n%50), Lng: lng + 0.01}
			_ = run.retry(run.ctx, func() error {
				s, err := r.c.ChangeDropoff(run.ctx, r.trip, p, 0)
				if err == nil && s.FeedPosition != "" {
					run.check.Acked(r.topic, s.FeedPosition)
				}
				return err
			})
			run.busy.Add(-1)
			continue
		}
		cid := fmt.Sprintf("m%d", n)
		_ = run.retry(run.ctx, func() error {
			p, err := r.c.SendMessage(run.ctx, r.trip, cid, "hello "+cid)
			if err == nil {
				run.check.Acked(r.topic, p.EventID)
			}
			return err
		})
		run.busy.Add(-1)
	}
}
