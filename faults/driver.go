package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/client"
)

// driverState is one driver of a Load: on WebSocket, pinging once a second
// near its rider's pickup, accepting the offer for it and acking every
// command.
type driverState struct {
	id, topic string
	ws        *client.DriverWS
	seq       atomic.Int64
	markSeq   atomic.Int64 // first ping seq queued after the mark
	recovered atomic.Int64
}

// start connects the driver, sends its first ping and makes it available;
// then it pings and obeys its commands until run ends.
func (d *driverState) start(ctx context.Context, run *loadRun, lat, lng float64) error {
	tok, err := run.token(ctx, "driver", d.id)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ws, err := client.DialDriver(dctx, client.DriverWSConfig{Bases: []string{run.cfg.Base}, DriverID: d.id, Token: tok,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		return fmt.Errorf("driver %s: %w", d.id, err)
	}
	d.ws = ws
	run.check.Start(d.topic, "0-0") // a new driver: its whole command stream
	d.ping(lat, lng)
	if err := ws.Flush(dctx); err != nil {
		return fmt.Errorf("driver %s first ping: %w", d.id, err)
	}
	c := client.New(run.cfg.Base, tok, run.pub.HTTPClient())
	if err := run.retry(dctx, func() error { _, err := c.SetStatus(dctx, d.id, "available"); return err }); err != nil {
		return fmt.Errorf("driver %s available: %w", d.id, err)
	}
	run.wg.Go(func() { d.pingLoop(run.ctx, lat, lng) })
	run.wg.Go(func() { d.obey(run) })
	return nil
}

// ping queues the next ping: a few metres of jitter around the pickup, a
// driver waiting.
func (d *driverState) ping(lat, lng float64) {
	s := d.seq.Add(1)
	j := 0.00002 * float64(s%5)
	d.ws.Locations(client.Ping{Lat: lat + j, Lng: lng + j, TS: time.Now(), Seq: s})
}

// pingLoop pings once a second until ctx ends, and notes when the first
// ping queued after the mark is acked (recovered).
func (d *driverState) pingLoop(ctx context.Context, lat, lng float64) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	check := time.NewTicker(50 * time.Millisecond)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.ping(lat, lng)
		case <-check.C:
			if ms := d.markSeq.Load(); ms > 0 && d.recovered.Load() == 0 && d.ws.LastAck().Seq >= ms {
				d.recovered.Store(time.Now().UnixNano())
			}
		}
	}
}

// obey reads the driver's commands until run ends: each goes to the
// Checker, an offer is accepted, and every command is acked.
func (d *driverState) obey(run *loadRun) {
	for {
		var cmd client.Command
		select {
		case <-run.ctx.Done():
			return
		case cmd = <-d.ws.Commands():
		}
		if cmd.Type == "reset" {
			run.check.Reset(d.topic, cmd.Position)
			continue
		}
		run.check.Observe(d.topic, cmd.ID)
		if cmd.Type == "offer" {
			var o struct {
				TripID string `json:"trip_id"`
			}
			_ = json.Unmarshal(cmd.Data, &o)
			_ = run.retry(run.ctx, func() error {
				actx, cancel := context.WithTimeout(run.ctx, 5*time.Second)
				defer cancel()
				_, err := d.ws.Act(actx, "accept", o.TripID, "")
				return err
			})
		}
		_ = run.retry(run.ctx, func() error {
			actx, cancel := context.WithTimeout(run.ctx, 5*time.Second)
			defer cancel()
			return d.ws.Ack(actx, cmd.ID)
		})
	}
}
