package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hextrack/hextrack/client"
)

// Driver transports.
const (
	TransportREST  = "rest"
	TransportWS    = "ws"
	TransportMixed = "mixed" // half the drivers on each
)

// DriverConn is a driver's link to the server: pings up, commands down,
// trip actions. Both implementations speak only the client package.
type DriverConn interface {
	// Send uploads pings. REST answers synchronously (errThrottled when
	// the server refused the batch with 429: keep it and retry later); the
	// WebSocket queues them in its client, which keeps them until acked
	// and resends after a reconnect, so Send never fails there.
	Send(ctx context.Context, pings []client.Ping) error
	// Commands delivers the driver's commands (offers, cancellations...),
	// each once, in order.
	Commands() <-chan client.Command
	// Ack tells the server every command up to id was handled.
	Ack(ctx context.Context, id string) error
	// Act posts a trip action (accept, decline, arrived, pickup, complete).
	Act(ctx context.Context, trip, action, reason string) (client.Snapshot, error)
	// Drop cuts the connection as a lost network would (a no-op for REST).
	Drop()
	Close()
}

var (
	_ DriverConn = (*restConn)(nil)
	_ DriverConn = (*wsConn)(nil)
)

// errThrottled: the server refused a ping batch with 429 (its per-driver
// ping rate); the caller keeps the pings and sends them later.
var errThrottled = errors.New("sim: pings throttled by the server")

// restConn: pings by POST /v1/drivers/{id}/locations, commands by
// long-polling GET /v1/drivers/{id}/commands, acks and actions by POST.
type restConn struct {
	c      *client.Client
	id     string
	st     *Stats
	cmds   chan client.Command
	cancel context.CancelFunc
	done   chan struct{}
}

func newRESTConn(ctx context.Context, c *client.Client, id string, st *Stats, commands bool) *restConn {
	ctx, cancel := context.WithCancel(ctx)
	r := &restConn{c: c, id: id, st: st, cmds: make(chan client.Command, 16), cancel: cancel, done: make(chan struct{})}
	if commands {
		go r.pollCommands(ctx)
	} else {
		close(r.done)
	}
	return r
}

func (r *restConn) Commands() <-chan client.Command { return r.cmds }

func (r *restConn) Drop() {}

func (r *restConn) Close() {
	r.cancel()
	<-r.done
}

func (r *restConn) Send(ctx context.Context, pings []client.Ping) error {
	return sendREST(ctx, r.c, r.id, pings, r.st)
}

func (r *restConn) Act(ctx context.Context, trip, action, reason string) (client.Snapshot, error) {
	r.st.C.Requests.Add(1)
	return r.c.TripAction(ctx, trip, action, reason)
}

// sendREST uploads pings in chunks of at most 500 and counts the outcome.
// On an error the pings not yet accepted are the caller's to keep: a
// chunk either applies whole or not at all.
func sendREST(ctx context.Context, c *client.Client, id string, pings []client.Ping, st *Stats) error {
	for len(pings) > 0 {
		n := min(len(pings), 500)
		start := time.Now()
		st.C.Requests.Add(1)
		res, err := c.SendLocations(ctx, id, pings[:n])
		if rej, ok := allRejected(err); ok {
			// Every ping of the chunk was refused (outliers, jumps): they
			// never will be accepted, so they are done, not retried.
			res, err = rej, nil
		}
		if err != nil {
			if isStatus(err, http.StatusTooManyRequests) {
				st.C.PingsThrottled.Add(1)
				return errThrottled
			}
			return err
		}
		st.Ack.Observe(time.Since(start))
		st.C.PingsAcked.Add(int64(res.Accepted))
		st.C.PingsDuplicate.Add(int64(res.Duplicates))
		st.C.PingsRejected.Add(int64(len(res.Rejected)))
		for _, r := range res.Rejected {
			seq := int64(-1) // an index outside the batch: counted, not matched
			if r.Index >= 0 && r.Index < n {
				seq = pings[r.Index].Seq
			}
			st.Rejects.Rejected(id, seq, r.Reason)
		}
		pings = pings[n:]
	}
	return nil
}

// allRejected: err is the 400 of an upload none of whose pings was
// acceptable; its details are the per-ping verdicts.
func allRejected(err error) (client.IngestResult, bool) {
	var ae *client.Error
	var res client.IngestResult
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || len(ae.Details) == 0 {
		return res, false
	}
	if json.Unmarshal(ae.Details, &res) != nil || len(res.Rejected) == 0 {
		return res, false
	}
	return res, true
}

// pollCommands long-polls the command channel, resuming after the last
// command it delivered; a 410 (commands trimmed) resumes at the position
// the server gives.
func (r *restConn) pollCommands(ctx context.Context) {
	defer close(r.done)
	after := ""
	for attempt := 0; ctx.Err() == nil; {
		r.st.C.Requests.Add(1)
		p, err := r.c.DriverCommands(ctx, r.id, after, 100, 25*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if pos, ok := client.GoneCommandPosition(err); ok {
				r.st.C.Resets.Add(1)
				after = pos
				continue
			}
			if isStatus(err, http.StatusNotFound) {
				return // the server has no command channel: sim dispatch only
			}
			r.st.Err(err)
			if isStatus(err, http.StatusServiceUnavailable) {
				// No command channel on this node (yet): look again later.
				if !sleepCtx(ctx, 5*time.Second) {
					return
				}
				continue
			}
			r.st.C.Reconnects.Add(1)
			attempt++
			if !sleepCtx(ctx, time.Duration(min(attempt, 5))*200*time.Millisecond) {
				return
			}
			continue
		}
		attempt = 0
		for _, c := range p.Commands {
			if c.ID != "" && !newerID(c.ID, after) {
				continue // already delivered
			}
			select {
			case r.cmds <- c:
			case <-ctx.Done():
				return
			}
			if c.ID != "" {
				after = c.ID
			}
		}
		if p.Next != "" && newerID(p.Next, after) {
			after = p.Next
		}
	}
}

func (r *restConn) Ack(ctx context.Context, id string) error {
	r.st.C.Requests.Add(1)
	_, err := r.c.AckCommand(ctx, r.id, id)
	return err
}

// wsConn is a driver on the WebSocket: a client.DriverWS (resume by
// command ID, pings kept until acked and resent after a reconnect,
// commands once each) plus the simulator's measurements.
type wsConn struct {
	id   string
	ws   *client.DriverWS
	rest *client.Client
	st   *Stats
	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
	pending []sentPing // queued, not yet acked, in seq order
}

type sentPing struct {
	seq int64
	at  time.Time
}

// dialWS connects a driver's WebSocket (retrying until ctx ends).
func dialWS(ctx context.Context, c *client.Client, id string, st *Stats, d *websocket.Dialer) (*wsConn, error) {
	w := &wsConn{id: id, rest: c, st: st, done: make(chan struct{})}
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
func (w *wsConn) countReconnects(ctx context.Context) {
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

func (w *wsConn) Commands() <-chan client.Command { return w.ws.Commands() }

func (w *wsConn) Drop() { w.ws.Drop() }

func (w *wsConn) Close() {
	w.stop()
	<-w.done
	_ = w.ws.Close()
}

func (w *wsConn) Send(_ context.Context, pings []client.Ping) error {
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
func (w *wsConn) acked(a client.LocationAck) {
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

func (w *wsConn) Ack(ctx context.Context, id string) error {
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
func (w *wsConn) Act(ctx context.Context, trip, action, reason string) (client.Snapshot, error) {
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

// isStatus: err is an API error answer with that HTTP status.
func isStatus(err error, status int) bool {
	var ae *client.Error
	return errors.As(err, &ae) && ae.Status == status
}

// movedOn: the server refused a trip action because the trip is no longer
// where the caller thought (cancelled, reassigned, already transitioned,
// another driver's): normal in a live system. REST answers carry the
// status; WebSocket errors only the code.
func movedOn(err error) bool {
	var ae *client.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Status {
	case http.StatusConflict, http.StatusForbidden, http.StatusNotFound, http.StatusPreconditionFailed:
		return true
	}
	switch ae.Code {
	case "conflict", "invalid_transition", "forbidden", "not_found", "version_mismatch":
		return true
	}
	return false
}

// newerID: event ID a is after b ("" is before everything).
func newerID(a, b string) bool {
	x, okA := ParseID(a)
	if !okA {
		return false
	}
	y, okB := ParseID(b)
	return !okB || y.Less(x)
}

// commandTrip finds the trip a command is about in its data: "trip_id",
// "trip" (an ID or an object with "id"), or "id".
func commandTrip(data json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(m["trip_id"], &s) == nil && s != "" {
		return s
	}
	if raw, ok := m["trip"]; ok {
		if json.Unmarshal(raw, &s) == nil && s != "" {
			return s
		}
		var t struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &t) == nil && t.ID != "" {
			return t.ID
		}
	}
	if json.Unmarshal(m["id"], &s) == nil {
		return s
	}
	return ""
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
