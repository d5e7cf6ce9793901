package driverlink

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/sim/eventcheck"
	"github.com/hextrack/hextrack/sim/metrics"
)

// ErrThrottled: the server refused a ping batch with 429 (its per-driver
// ping rate); the caller keeps the pings and sends them later.
var ErrThrottled = errors.New("driverlink: pings throttled by the server")

// REST is a driver over HTTP: pings by POST /v1/drivers/{id}/locations, commands by
// long-polling GET /v1/drivers/{id}/commands, acks and actions by POST.
type REST struct {
	c      *client.Client
	id     string
	st     *metrics.Stats
	cmds   chan client.Command
	cancel context.CancelFunc
	done   chan struct{}
}

// NewREST starts a driver's REST link; with commands it long-polls the
// command channel until Close.
func NewREST(ctx context.Context, c *client.Client, id string, st *metrics.Stats, commands bool) *REST {
	ctx, cancel := context.WithCancel(ctx)
	r := &REST{c: c, id: id, st: st, cmds: make(chan client.Command, 16), cancel: cancel, done: make(chan struct{})}
	if commands {
		go r.pollCommands(ctx)
	} else {
		close(r.done)
	}
	return r
}

// Commands delivers the long-polled commands, each once, in order.
func (r *REST) Commands() <-chan client.Command { return r.cmds }

// Drop is a no-op: REST holds no connection to lose.
func (r *REST) Drop() {}

// Close stops the command poll and waits for it.
func (r *REST) Close() {
	r.cancel()
	<-r.done
}

// Send uploads pings (see sendREST); ErrThrottled on a 429.
func (r *REST) Send(ctx context.Context, pings []client.Ping) error {
	return sendREST(ctx, r.c, r.id, pings, r.st)
}

// Act posts a trip action.
func (r *REST) Act(ctx context.Context, trip, action, reason string) (client.Snapshot, error) {
	r.st.C.Requests.Add(1)
	return r.c.TripAction(ctx, trip, action, reason)
}

// sendREST uploads pings in chunks of at most 500 and counts the outcome.
// On an error the pings not yet accepted are the caller's to keep: a
// chunk either applies whole or not at all.
func sendREST(ctx context.Context, c *client.Client, id string, pings []client.Ping, st *metrics.Stats) error {
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
				return ErrThrottled
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
func (r *REST) pollCommands(ctx context.Context) {
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
				if !sleep(ctx, 5*time.Second) {
					return
				}
				continue
			}
			r.st.C.Reconnects.Add(1)
			attempt++
			wait := time.Duration(min(attempt, 5)) * 200 * time.Millisecond
			if isStatus(err, http.StatusUnauthorized) {
				// The token is refused (a restarted server with a new
				// secret, revoked): back off instead of asking every 1 s.
				wait = AuthBackoff(attempt)
			}
			if !sleep(ctx, wait) {
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

// Ack acknowledges every command up to id.
func (r *REST) Ack(ctx context.Context, id string) error {
	r.st.C.Requests.Add(1)
	_, err := r.c.AckCommand(ctx, r.id, id)
	return err
}

// AuthBackoff is the wait after the n-th request in a row refused with
// 401 (a token the server no longer accepts won't pass a moment later
// either): 1 s doubling to 60 s, jittered (half to all of it).
func AuthBackoff(n int) time.Duration {
	d := min(time.Second<<min(max(n, 1)-1, 6), time.Minute)
	return d/2 + rand.N(d/2+1)
}

// isStatus: err is an API error answer with that HTTP status.
func isStatus(err error, status int) bool {
	var ae *client.Error
	return errors.As(err, &ae) && ae.Status == status
}

// newerID: event ID a is after b ("" is before everything).
func newerID(a, b string) bool {
	x, okA := eventcheck.ParseID(a)
	if !okA {
		return false
	}
	y, okB := eventcheck.ParseID(b)
	return !okB || y.Less(x)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
