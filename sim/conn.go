package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hextrack/hextrack/api/client"
)

// Driver transports.
const (
	TransportREST  = "rest"
	TransportWS    = "ws"
	TransportMixed = "mixed" // half the drivers on each
)

// DriverConn is a driver's link to the server: pings up, commands down.
// Trip transitions (accept, arrived, ...) always go over REST, which both
// transports share.
type DriverConn interface {
	// Send uploads pings. REST answers synchronously; WS is asynchronous
	// (acks are counted when they arrive) and returns once written.
	Send(ctx context.Context, pings []client.Ping) error
	// Commands delivers the driver's commands (offers, cancellations...).
	Commands() <-chan Event
	// Ack tells the server a command was handled.
	Ack(ctx context.Context, id string) error
	Close()
}

// restConn: pings by POST, commands by long-poll of
// GET /v1/drivers/{id}/commands, acks by POST .../ack.
type restConn struct {
	c      *client.Client
	id     string
	st     *Stats
	cmds   chan Event
	cancel context.CancelFunc
	done   chan struct{}
}

func newRESTConn(ctx context.Context, c *client.Client, id string, st *Stats, commands bool) *restConn {
	ctx, cancel := context.WithCancel(ctx)
	r := &restConn{c: c, id: id, st: st, cmds: make(chan Event, 16), cancel: cancel, done: make(chan struct{})}
	if commands {
		go r.pollCommands(ctx)
	} else {
		close(r.done)
	}
	return r
}

func (r *restConn) Commands() <-chan Event { return r.cmds }

func (r *restConn) Close() {
	r.cancel()
	<-r.done
}

func (r *restConn) Send(ctx context.Context, pings []client.Ping) error {
	return sendREST(ctx, r.c, r.id, pings, r.st)
}

// sendREST uploads pings in chunks of at most 500 and counts the outcome.
func sendREST(ctx context.Context, c *client.Client, id string, pings []client.Ping, st *Stats) error {
	for len(pings) > 0 {
		n := min(len(pings), 500)
		start := time.Now()
		st.C.Requests.Add(1)
		res, err := c.SendLocations(ctx, id, pings[:n])
		if err != nil {
			return err
		}
		st.Ack.Observe(time.Since(start))
		st.C.PingsAcked.Add(int64(res.Accepted))
		st.C.PingsDuplicate.Add(int64(res.Duplicates))
		st.C.PingsRejected.Add(int64(len(res.Rejected)))
		pings = pings[n:]
	}
	return nil
}

type commandPage struct {
	Events []Event `json:"events"`
	Next   string  `json:"next"`
}

func (r *restConn) pollCommands(ctx context.Context) {
	defer close(r.done)
	after := ""
	for attempt := 0; ctx.Err() == nil; {
		q := url.Values{"wait": {"25"}}
		if after != "" {
			q.Set("after", after)
		}
		var p commandPage
		r.st.C.Requests.Add(1)
		_, _, err := r.c.Do(ctx, http.MethodGet, "/v1/drivers/"+url.PathEscape(r.id)+"/commands?"+q.Encode(), nil, &p, nil)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ae *client.Error
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				return // the server has no command channel: sim dispatch only
			}
			r.st.Err(err)
			if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable {
				// No command channel on this node (yet): look again later.
				if !sleepCtx(ctx, 10*time.Second) {
					return
				}
				continue
			}
			r.st.C.Reconnects.Add(1)
			attempt++
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(min(attempt, 5)) * 200 * time.Millisecond):
			}
			continue
		}
		attempt = 0
		for _, e := range p.Events {
			select {
			case r.cmds <- e:
			case <-ctx.Done():
				return
			}
		}
		if p.Next != "" {
			after = p.Next
		} else if n := len(p.Events); n > 0 && p.Events[n-1].ID != "" {
			after = p.Events[n-1].ID
		}
	}
}

func (r *restConn) Ack(ctx context.Context, id string) error {
	r.st.C.Requests.Add(1)
	_, _, err := r.c.Do(ctx, http.MethodPost, "/v1/drivers/"+url.PathEscape(r.id)+"/commands/"+url.PathEscape(id)+"/ack", nil, nil, nil)
	return err
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

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
