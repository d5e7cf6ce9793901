package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Close codes the server uses on the driver WebSocket.
const (
	CloseReconnect = 1012 // node draining: reconnect and resume
	CloseReplaced  = 4001 // a newer connection of the driver took over
	CloseSlow      = 4002 // too slow: reconnect and resume
	CloseSuspended = 4403 // ops suspended the driver: do not reconnect
)

// ErrSuspended: ops suspended the driver; a DriverWS does not reconnect
// after it (the handshake is refused until ops reinstate the driver).
var ErrSuspended = errors.New("hextrack: driver suspended by ops")

// ErrReplaced: a newer connection of the same driver took over; a DriverWS
// does not reconnect after it.
var ErrReplaced = errors.New("hextrack: driver connection replaced by a newer one")

// ErrDisconnected: a request was in flight when the connection dropped;
// retry it (pings are kept and sent again by the DriverWS itself).
var ErrDisconnected = errors.New("hextrack: driver connection dropped")

// Command is one message of the driver's command channel (an event
// envelope: offer, trip.cancelled, trip.reassigned, trip.address_changed,
// ...), or a "reset" (Position set) when continuity could not be proven.
type Command struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Topic    string          `json:"topic"`
	TS       time.Time       `json:"ts"`
	Data     json.RawMessage `json:"data"`
	Position string          `json:"position,omitempty"`
}

// DriverWSConfig configures a DriverWS.
type DriverWSConfig struct {
	// Bases are server base URLs ("http://host:8080"); a reconnect tries the
	// next one. At least one.
	Bases    []string
	DriverID string
	Token    string
	// LastID is the last command already handled (resume point); "" for
	// the server's stored ack.
	LastID string
	// Header is added to the upgrade request (e.g. Origin).
	Header http.Header
	// Backoff bounds the reconnect delay (jittered, doubling). Zero: 100ms
	// and 3s.
	MinBackoff, MaxBackoff time.Duration
	// Batch is the most pings per locations message. Zero: 500.
	Batch int
	// MaxBuffered bounds pings kept while offline (oldest dropped beyond).
	// Zero: 100,000.
	MaxBuffered int
	// Dialer; nil: a dialer with a 10s handshake timeout.
	Dialer *websocket.Dialer
	// OnAck, if set, is called with every locations ack as it arrives (on
	// the connection's reader goroutine: keep it short), e.g. to measure
	// ping→ack latency. Nil: none.
	OnAck func(LocationAck)
}

// LocationAck is the server's answer to one locations message.
type LocationAck struct {
	Seq        int64 `json:"seq"`
	Accepted   int   `json:"accepted"`
	Duplicates int   `json:"duplicates"`
	Rejected   []struct {
		Index  int    `json:"index"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}

// DriverWS is a driver's WebSocket with auto-reconnect: it resumes commands
// by ID (hello{last_id}), keeps pings until the server acks them (so an
// offline period loses nothing and uploads in order on reconnect), and
// delivers each command once to Commands even when the server replays it.
type DriverWS struct {
	cfg   DriverWSConfig
	cmds  chan Command
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{}
	kick  chan struct{}
	codes chan int

	mu        sync.Mutex
	outbox    []Ping // unacked, in send order
	acked     string // last command acked by us
	seen      string // last command delivered to Commands
	conn      *websocket.Conn
	connected bool
	pending   map[string]chan wsReply
	nextRef   int
	err       error
	lastAck   LocationAck
	sentBatch int       // pings of outbox[0:sentBatch] are in flight
	retryAt   time.Time // no batch goes out before (after a refusal for now)
}

type wsReply struct {
	Type    string          `json:"type"`
	Ref     string          `json:"ref"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Raw     json.RawMessage `json:"-"`
}

// DialDriver connects (retrying until ctx is done) and keeps the connection
// up in the background until Close.
func DialDriver(ctx context.Context, cfg DriverWSConfig) (*DriverWS, error) {
	if len(cfg.Bases) == 0 || cfg.DriverID == "" {
		return nil, errors.New("hextrack: DriverWSConfig needs Bases and DriverID")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 3 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = 100_000
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	bg, stop := context.WithCancel(context.Background())
	d := &DriverWS{cfg: cfg, cmds: make(chan Command, 1024), ctx: bg, stop: stop, done: make(chan struct{}),
		kick: make(chan struct{}, 1), codes: make(chan int, 16), acked: cfg.LastID, seen: cfg.LastID,
		pending: map[string]chan wsReply{}}
	up := make(chan struct{})
	go d.run(up)
	select {
	case <-up:
		return d, nil
	case <-d.done:
		return nil, d.Err()
	case <-ctx.Done():
		d.Close()
		return nil, ctx.Err()
	}
}

// Commands delivers commands in order, each once.
func (d *DriverWS) Commands() <-chan Command { return d.cmds }

// CloseCodes reports the close code of every connection that ended (1006
// when it just dropped); for tests and logs. Older codes are dropped when
// nobody reads.
func (d *DriverWS) CloseCodes() <-chan int { return d.codes }

// Err is why the DriverWS stopped (ErrReplaced, an auth error), once
// Done is closed.
func (d *DriverWS) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Done is closed when the DriverWS stops for good.
func (d *DriverWS) Done() <-chan struct{} { return d.done }

// Connected reports whether a connection is up (ready received).
func (d *DriverWS) Connected() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.connected
}

// Close stops reconnecting and closes the connection.
func (d *DriverWS) Close() error {
	d.stop()
	<-d.done
	return nil
}

// Drop closes the current connection abruptly (as a lost network would);
// the DriverWS reconnects. For tests and simulations.
func (d *DriverWS) Drop() {
	d.mu.Lock()
	if d.conn != nil {
		_ = d.conn.UnderlyingConn().Close()
	}
	d.mu.Unlock()
}

// Locations queues pings; they are sent in batches while connected and
// kept (in order) until the server acks them.
func (d *DriverWS) Locations(pings ...Ping) {
	d.mu.Lock()
	d.outbox = append(d.outbox, pings...)
	if over := len(d.outbox) - d.cfg.MaxBuffered; over > 0 && over <= len(d.outbox)-d.sentBatch {
		d.outbox = append(d.outbox[:d.sentBatch], d.outbox[d.sentBatch+over:]...)
	}
	d.mu.Unlock()
	d.poke()
}

// Buffered is how many pings are not acked yet.
func (d *DriverWS) Buffered() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.outbox)
}

// LastAck is the server's latest locations ack.
func (d *DriverWS) LastAck() LocationAck {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastAck
}

// Flush waits until every queued ping is acked.
func (d *DriverWS) Flush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for d.Buffered() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.done:
			return d.Err()
		case <-t.C:
		}
	}
	return nil
}

// Ack acknowledges every command up to and including id; acked commands
// are not replayed.
func (d *DriverWS) Ack(ctx context.Context, id string) error {
	_, err := d.request(ctx, map[string]any{"type": "ack", "id": id})
	if err == nil {
		d.mu.Lock()
		if cmpID(id, d.acked) > 0 {
			d.acked = id
		}
		d.mu.Unlock()
	}
	return err
}

// Act sends a trip action (accept, decline, arrived, pickup, complete,
// cancel) and returns the trip snapshot of the server's ok.
func (d *DriverWS) Act(ctx context.Context, action, tripID, reason string) (json.RawMessage, error) {
	m := map[string]any{"type": action, "trip": tripID}
	if reason != "" {
		m["reason"] = reason
	}
	r, err := d.request(ctx, m)
	if err != nil {
		return nil, err
	}
	var ok struct {
		Trip json.RawMessage `json:"trip"`
	}
	_ = json.Unmarshal(r.Raw, &ok)
	return ok.Trip, nil
}

// request sends a message with a ref and waits for the reply to it.
func (d *DriverWS) request(ctx context.Context, m map[string]any) (wsReply, error) {
	ch := make(chan wsReply, 1)
	d.mu.Lock()
	conn := d.conn
	if conn == nil || !d.connected {
		d.mu.Unlock()
		return wsReply{}, ErrDisconnected
	}
	d.nextRef++
	ref := "r" + strconv.Itoa(d.nextRef)
	d.pending[ref] = ch
	m["ref"] = ref
	err := d.writeLocked(m)
	d.mu.Unlock()
	if err != nil {
		return wsReply{}, ErrDisconnected
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return wsReply{}, ErrDisconnected
		}
		if r.Type == "error" {
			return r, &Error{Code: r.Code, Message: r.Message}
		}
		return r, nil
	case <-ctx.Done():
		d.mu.Lock()
		delete(d.pending, ref)
		d.mu.Unlock()
		return wsReply{}, ctx.Err()
	}
}

// writeLocked writes one message; d.mu serializes writers.
func (d *DriverWS) writeLocked(m any) error {
	_ = d.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return d.conn.WriteJSON(m)
}

func (d *DriverWS) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *DriverWS) fail(err error) {
	d.mu.Lock()
	if d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
}

func (d *DriverWS) wsURL(base string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + "/v1/drivers/" + url.PathEscape(d.cfg.DriverID) + "/ws")
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	return u.String(), nil
}

func (d *DriverWS) run(up chan struct{}) {
	defer close(d.done)
	defer close(d.cmds)
	backoff := d.cfg.MinBackoff
	for attempt := 0; d.ctx.Err() == nil; attempt++ {
		base := d.cfg.Bases[attempt%len(d.cfg.Bases)]
		target, err := d.wsURL(base)
		if err != nil {
			d.fail(err)
			return
		}
		h := http.Header{}
		for k, v := range d.cfg.Header {
			h[k] = v
		}
		if d.cfg.Token != "" {
			h.Set("Authorization", "Bearer "+d.cfg.Token)
		}
		conn, resp, err := d.cfg.Dialer.DialContext(d.ctx, target, h)
		if err == nil {
			backoff = d.cfg.MinBackoff
			code := (&session{d: d, conn: conn, up: up}).serve()
			select {
			case d.codes <- code:
			default:
			}
			if code == CloseReplaced {
				d.fail(ErrReplaced)
				return
			}
			if code == CloseSuspended {
				d.fail(ErrSuspended)
				return
			}
		} else if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			d.fail(fmt.Errorf("hextrack: driver ws: %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
			return
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, d.cfg.MaxBackoff)
		select {
		case <-d.ctx.Done():
		case <-time.After(wait):
		}
	}
	d.fail(context.Canceled)
}

// cmpID compares two event IDs ("ms-seq"); "" is before everything.
func cmpID(a, b string) int {
	if a == b {
		return 0
	}
	if b == "" {
		return 1
	}
	if a == "" {
		return -1
	}
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if x != y {
		if x < y {
			return -1
		}
		return 1
	}
	x, _ = strconv.ParseUint(as, 10, 64)
	y, _ = strconv.ParseUint(bs, 10, 64)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
