package driverlink

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/sim/metrics"
)

// WS is a driver on the WebSocket: a client.DriverWS (resume by
// command ID, pings kept until acked and resent after a reconnect,
// commands once each) plus the simulator's measurements.
type WS struct {
	id   string
	ws   *client.DriverWS
	rest *client.Client
	st   *metrics.Stats
	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
	pending []sentPing // queued, not yet acked, in seq order
}

type sentPing struct {
	seq int64
	at  time.Time
}

// DialWS connects a driver's WebSocket (retrying until ctx ends).
func DialWS(ctx context.Context, c *client.Client, id string, st *metrics.Stats, d *websocket.Dialer) (*WS, error) {
	w := &WS{id: id, rest: c, st: st, done: make(chan struct{})}
	ws, err := client.DialDriver(ctx, client.DriverWSConfig{Bases: []string{c.BaseURL()}, DriverID: id, Token: c.Token(),
		Dialer: d, OnAck: w.acked})
	if err != nil {
		return nil, err
	}
	w.ws = ws
	cctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go w.countReconnects(cctx)
	return w, nil
}

// countReconnects counts every connection that ended while the driver was
// still running: the DriverWS reconnects after each.
func (w *WS) countReconnects(ctx context.Context) {
	defer close(w.done)
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-w.ws.CloseCodes():
			if !ok {
				return
			}
			w.st.C.Reconnects.Add(1)
		case <-w.ws.Done():
			if err := w.ws.Err(); err != nil && !errors.Is(err, context.Canceled) {
				w.st.Err(err)
			}
			return
		}
	}
}

// Commands delivers the DriverWS's commands, each once, in order.
func (w *WS) Commands() <-chan client.Command { return w.ws.Commands() }

// Drop cuts the connection as a lost network would; it resumes after.
func (w *WS) Drop() { w.ws.Drop() }

// Close stops counting reconnects and closes the DriverWS.
func (w *WS) Close() {
	w.stop()
	<-w.done
	_ = w.ws.Close()
}

// Send queues pings in the DriverWS (kept until acked); it never fails.
func (w *WS) Send(_ context.Context, pings []client.Ping) error {
	now := time.Now()
	w.mu.Lock()
	for _, p := range pings {
		w.pending = append(w.pending, sentPing{p.Seq, now})
	}
	w.mu.Unlock()
	w.st.C.Requests.Add(1)
	w.ws.Locations(pings...)
	return nil
}

// acked records a locations ack: the batch at the head of pending is done.
func (w *WS) acked(a client.LocationAck) {
	now := time.Now()
	w.mu.Lock()
	// The batch acked is the head of what was queued (the DriverWS sends
	// its outbox in order, one batch at a time), and each of its pings is
	// accepted, a duplicate or rejected: rejection i is pending[i]. (Not
	// the pings up to a.Seq: that is the highest seq the server accepted,
	// short of the batch's end when its last ping was rejected.)
	n := min(len(w.pending), a.Accepted+a.Duplicates+len(a.Rejected))
	for _, p := range w.pending[:n] {
		w.st.Ack.Observe(now.Sub(p.at))
	}
	for _, r := range a.Rejected {
		seq := int64(-1)
		if r.Index >= 0 && r.Index < n {
			seq = w.pending[r.Index].seq
		}
		w.st.Rejects.Rejected(w.id, seq, r.Reason)
	}
	w.pending = append(w.pending[:0], w.pending[n:]...)
	w.mu.Unlock()
	w.st.C.PingsAcked.Add(int64(a.Accepted))
	w.st.C.PingsDuplicate.Add(int64(a.Duplicates))
	w.st.C.PingsRejected.Add(int64(len(a.Rejected)))
}

// Ack acknowledges every command up to id, over REST while the socket
// is down.
func (w *WS) Ack(ctx context.Context, id string) error {
	err := w.ws.Ack(ctx, id)
	if errors.Is(err, client.ErrDisconnected) {
		// Not acked: the command is replayed after the reconnect and the
		// DriverWS drops it as already delivered; ack it over REST.
		w.st.C.Requests.Add(1)
		_, err = w.rest.AckCommand(ctx, w.id, id)
	}
	return err
}

// Act sends the action over the WebSocket, or over REST while it is down.
func (w *WS) Act(ctx context.Context, trip, action, reason string) (client.Snapshot, error) {
	var s client.Snapshot
	raw, err := w.ws.Act(ctx, action, trip, reason)
	if errors.Is(err, client.ErrDisconnected) {
		w.st.C.Requests.Add(1)
		return w.rest.TripAction(ctx, trip, action, reason)
	}
	if err != nil {
		return s, err
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &s); err != nil {
			return s, err
		}
	}
	return s, nil
}
