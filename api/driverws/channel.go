package driverws

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// WebSocket close codes sent by the server (besides gorilla's 1009 for an
// oversized message).
const (
	// CloseReconnect (1012, "service restart"): the node drains; reconnect
	// (to any node) and resume.
	CloseReconnect = websocket.CloseServiceRestart
	// CloseReplaced: a newer connection of the same driver took over. Do
	// not reconnect automatically.
	CloseReplaced = 4001
	// CloseSlow: the connection could not keep up (its send queue or
	// command buffer overflowed). Reconnect and resume.
	CloseSlow = 4002
	// CloseProtocol: the first message was not a valid hello in time.
	CloseProtocol = 4003
	// CloseTokenExpired: the connection's token expired. Get a fresh
	// token, reconnect and resume (hello.last_id).
	CloseTokenExpired = 4401
	// CloseSuspended: ops suspended the driver. Do not reconnect: the
	// handshake is refused (403 driver_suspended) until ops reinstate it.
	CloseSuspended = 4403
)

// Config tunes driver WebSockets (api's WSConfig). Zero values are the
// documented defaults.
type Config struct {
	// Origins are the browser origins allowed besides the server's own
	// host ("https://ops.example.com"; "*" allows any). A request without
	// an Origin header (a native app) is always allowed. Zero: none.
	Origins []string
	// PingPeriod is how often the server pings. Zero: 20s.
	PingPeriod time.Duration
	// PongWait: a connection silent (no pong, no message) this long is
	// dropped. Zero: 60s.
	PongWait time.Duration
	// WriteWait bounds one write. Zero: 10s.
	WriteWait time.Duration
	// ReadLimit is the largest message accepted; a larger one closes the
	// connection with 1009. Zero: 64 KiB.
	ReadLimit int64
	// SendQueue bounds replies (acks, errors) waiting to be written; an
	// overflow closes with CloseSlow. Zero: 64.
	SendQueue int
	// HelloWait is how long the server waits for the first message (hello)
	// before it starts delivering from the stored ack anyway. Zero: 5s.
	HelloWait time.Duration
	// DrainWindow spreads the reconnect close sent on drain over a random
	// delay within it, so clients do not all reconnect at once. Zero: 5s.
	DrainWindow time.Duration
}

func (c Config) withDefaults() Config {
	if c.PingPeriod <= 0 {
		c.PingPeriod = 20 * time.Second
	}
	if c.PongWait <= 0 {
		c.PongWait = 60 * time.Second
	}
	if c.WriteWait <= 0 {
		c.WriteWait = 10 * time.Second
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = 64 << 10
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 64
	}
	if c.HelloWait <= 0 {
		c.HelloWait = 5 * time.Second
	}
	if c.DrainWindow <= 0 {
		c.DrainWindow = 5 * time.Second
	}
	return c
}

// Channel is the driver WebSocket on this node: the open connections,
// one per driver, and what they call.
type Channel struct {
	cfg      Config
	cmds     Commands // nil: no driver channel
	drivers  Drivers  // pings and the driver's state on a reset
	trips    Trips    // trip actions sent over the socket
	errs     func(error) (code, message string, known bool)
	log      *slog.Logger
	draining <-chan struct{}
	gauge    prometheus.Gauge // open driver WebSockets
	up       websocket.Upgrader

	mu    sync.Mutex
	conns map[string]*wsConn
	wg    sync.WaitGroup
}

// Deps are what a Channel calls. Commands, Drivers and Trips nil: the
// channel is not served (Serving is false).
type Deps struct {
	Commands Commands
	Drivers  Drivers
	Trips    Trips
	// CheckOrigin allows a handshake's Origin (the caller's CORS rule).
	CheckOrigin func(r *http.Request) bool
	// Errors renders a service's error as the code and message the client
	// is told (api's error table); known false: it is logged.
	Errors   func(err error) (code, message string, known bool)
	Log      *slog.Logger
	Draining <-chan struct{} // closed when the node drains
	Gauge    prometheus.Gauge
}

// Commands are a driver's commands (live delivery, resume, acks) and its
// one live session across nodes.
type Commands interface {
	ResumeFrom(ctx context.Context, driverID, lastID string) (string, error)
	Subscribe(ctx context.Context, driverID, after string) (Subscription, error)
	Ack(ctx context.Context, driverID, id string) (string, error)
	TakeSession(ctx context.Context, driverID, session string) (string, error)
	Session(ctx context.Context, driverID string) (string, error)
	EndSession(ctx context.Context, driverID, session string)
}

// Subscription is a connection's live delivery of its driver's commands
// (feedredis.Subscription): items from C until it is closed, then Err says
// why.
type Subscription interface {
	C() <-chan feed.Item
	Err() error
	Close()
}

// Drivers ingest a driver's pings and read its state and whether ops
// suspended it.
type Drivers interface {
	Ingest(ctx context.Context, driverID string, pings []driver.DecodedPing) (driver.IngestResult, error)
	Limits() driver.Limits
	Get(ctx context.Context, driverID string) (driver.State, error)
	IsSuspended(ctx context.Context, driverID string) (bool, error)
}

// Trips are the trip actions a driver sends over the socket.
type Trips interface {
	Accept(ctx context.Context, id string, a trip.Actor) (trip.Snapshot, error)
	Act(ctx context.Context, id string, a trip.Actor, action, reason string) (trip.Snapshot, error)
}

// New returns the driver channel of a node; cfg's zero fields take their
// defaults.
func New(cfg Config, d Deps) *Channel {
	dc := &Channel{cfg: cfg.withDefaults(), cmds: d.Commands, drivers: d.Drivers, trips: d.Trips, errs: d.Errors,
		log: d.Log, draining: d.Draining, gauge: d.Gauge, conns: map[string]*wsConn{}}
	dc.up = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		CheckOrigin:      d.CheckOrigin,
	}
	return dc
}

// Serving reports whether this node serves the channel (its deps are set).
func (dc *Channel) Serving() bool { return dc.cmds != nil && dc.trips != nil && dc.drivers != nil }

// Admit refuses a suspended driver before the upgrade (driver.ErrSuspended,
// for the caller's error table); a failed check lets it in (a suspension
// missed now is caught by the connection's periodic check).
func (dc *Channel) Admit(ctx context.Context, driverID string) error {
	if ok, err := dc.drivers.IsSuspended(ctx, driverID); err == nil && ok {
		return fmt.Errorf("%w: ops suspended driver %s", driver.ErrSuspended, driverID)
	}
	return nil
}

// Wait waits until every driver WebSocket of this node has closed (once
// the node drains they close within Config.DrainWindow), or ctx is done.
// http.Server.Shutdown does not wait for hijacked connections.
func (dc *Channel) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { dc.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Serve upgrades the request of c to the driver WebSocket of driverID and
// serves it until it closes; expires is when the connection's token
// expires (zero: never). The caller has authenticated the driver and
// refused what can be refused before the upgrade (not an upgrade, an
// origin CheckOrigin refuses, a draining node, !Serving) with an HTTP
// error; a failed upgrade has been answered by the upgrader.
func (dc *Channel) Serve(c echo.Context, driverID string, expires time.Time) {
	r := c.Request()
	ws, err := dc.up.Upgrade(c.Response(), r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	dc.wg.Add(1)
	defer dc.wg.Done()
	dc.gauge.Inc()
	defer dc.gauge.Dec()
	conn := newWSConn(dc, ws, driverID, expires)
	conn.serve(context.WithoutCancel(r.Context()))
}

// wsConn is one driver WebSocket: the handler goroutine reads, one writer
// goroutine writes (commands from the feed, replies, pings, the close).
type wsConn struct {
	dc       *Channel
	ws       *websocket.Conn
	driverID string
	session  string
	actor    trip.Actor
	send     chan []byte
	closing  chan struct{} // closed once a close code is chosen
	done     chan struct{} // closed when the reader ended
	once     sync.Once
	code     int
	text     string
	// expires is when the connection's token expires (zero: never).
	expires time.Time
}

func newWSConn(dc *Channel, ws *websocket.Conn, id string, expires time.Time) *wsConn {
	// Sessions sort by start time, so a connection is only ever replaced by
	// a newer one, even when two handshakes overlap.
	var b [4]byte
	_, _ = rand.Read(b[:])
	session := fmt.Sprintf("%016x-%s", time.Now().UnixNano(), hex.EncodeToString(b[:]))
	return &wsConn{dc: dc, ws: ws, driverID: id, session: session,
		actor: trip.Actor{Role: trip.RoleDriver, ID: id},
		send:  make(chan []byte, dc.cfg.SendQueue), closing: make(chan struct{}), done: make(chan struct{}),
		expires: expires}
}

// closeWith makes the writer send a close frame with code and close; the
// first call wins.
func (c *wsConn) closeWith(code int, text string) {
	c.once.Do(func() {
		c.code, c.text = code, text
		close(c.closing)
	})
}

// reply queues a message for the writer; a full queue drops the connection
// (the client resumes), the reader never blocks on a slow client.
func (c *wsConn) reply(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	select {
	case c.send <- b:
	default:
		c.closeWith(CloseSlow, "send queue overflow; reconnect and resume")
	}
}

type wsError struct {
	Type    string `json:"type"`
	Ref     string `json:"ref,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (c *wsConn) replyErr(ref string, err error) {
	var me *MessageError
	if errors.As(err, &me) {
		c.reply(wsError{Type: "error", Ref: ref, Code: me.Code, Message: me.Message})
		return
	}
	code, msg, known := c.dc.errs(err)
	if !known {
		c.dc.log.Error("ws: request failed", "driver", c.driverID, "err", err)
	}
	c.reply(wsError{Type: "error", Ref: ref, Code: code, Message: msg})
}

func (c *wsConn) serve(ctx context.Context) {
	dc := c.dc
	cfg := dc.cfg
	defer c.ws.Close()
	c.ws.SetReadLimit(cfg.ReadLimit)
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
	})

	dc.register(ctx, c)
	defer dc.unregister(ctx, c)

	subCtx, cancelSub := context.WithCancel(ctx)
	defer cancelSub()
	subs := make(chan started, 1)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writer(ctx, subs)
	}()
	defer func() {
		close(c.done)
		<-writerDone
	}()

	// Delivery starts with hello{last_id} (the first message), or from the
	// stored ack when the first message is something else or none comes
	// within HelloWait.
	var startOnce sync.Once
	start := func(lastID string) {
		startOnce.Do(func() {
			after, err := dc.cmds.ResumeFrom(subCtx, c.driverID, lastID)
			if err != nil {
				c.replyErr("", err)
				if after, err = dc.cmds.ResumeFrom(subCtx, c.driverID, ""); err != nil {
					c.closeWith(websocket.CloseTryAgainLater, "try again")
					return
				}
			}
			sub, err := dc.cmds.Subscribe(subCtx, c.driverID, after)
			if err != nil {
				if subCtx.Err() == nil {
					c.dc.log.Warn("ws: subscribe", "driver", c.driverID, "err", err)
				}
				c.closeWith(websocket.CloseTryAgainLater, "try again")
				return
			}
			subs <- started{sub, after}
		})
	}
	helloTimer := time.AfterFunc(cfg.HelloWait, func() { start("") })
	defer helloTimer.Stop()
	for first := true; ; first = false {
		buf, err := c.read()
		if err != nil {
			return // closed by us, by the client, a timeout, or 1009 (gorilla sent it)
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
		b := buf.Bytes()
		hello := false
		if first {
			if m, err := decodeWSMessage(b); err == nil && m.Type == "hello" {
				start(m.LastID)
				hello = true
			} else {
				start("")
			}
		}
		if !hello {
			dc.handle(ctx, c, b)
		}
		putReadBuf(buf)
	}
}

// register makes c the driver's connection. Newer wins: this node's older
// connection is replaced at once, the other nodes' are told through the
// driver's feed (TakeSession).
func (dc *Channel) register(ctx context.Context, c *wsConn) {
	dc.mu.Lock()
	if old := dc.conns[c.driverID]; old == nil || old.session < c.session {
		if old != nil {
			old.closeWith(CloseReplaced, "replaced by a newer connection")
		}
		dc.conns[c.driverID] = c
	} else {
		c.closeWith(CloseReplaced, "replaced by a newer connection")
	}
	dc.mu.Unlock()
	if cur, err := dc.cmds.TakeSession(ctx, c.driverID, c.session); err != nil {
		dc.log.Warn("ws: session", "driver", c.driverID, "err", err)
	} else if cur != c.session {
		c.closeWith(CloseReplaced, "replaced by a newer connection")
	}
}

// unregister forgets c and ends its session.
func (dc *Channel) unregister(ctx context.Context, c *wsConn) {
	dc.mu.Lock()
	if dc.conns[c.driverID] == c {
		delete(dc.conns, c.driverID)
	}
	dc.mu.Unlock()
	bg, cancel := context.WithTimeout(ctx, 2*time.Second)
	dc.cmds.EndSession(bg, c.driverID, c.session)
	cancel()
}

// readBufs holds message buffers: a message is read into one, handled,
// and the buffer is reused (nothing keeps a reference to a message after
// handle returns), instead of a new slice per message. A new buffer starts
// with room for a batch of 50 pings (bytes.Buffer.ReadFrom would grow it
// from 512 bytes in four steps; the pool empties at every GC).
var readBufs = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 8<<10)) }}

func putReadBuf(b *bytes.Buffer) {
	if b.Cap() <= 128<<10 {
		b.Reset()
		readBufs.Put(b)
	}
}

// read reads the next data message into a pooled buffer (release it with
// putReadBuf), as websocket.Conn.ReadMessage reads it: the read limit
// applies (1009 when exceeded).
func (c *wsConn) read() (*bytes.Buffer, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	buf := readBufs.Get().(*bytes.Buffer)
	if _, err := buf.ReadFrom(r); err != nil {
		putReadBuf(buf)
		return nil, err
	}
	return buf, nil
}

// writer is the only goroutine writing data frames.
// started is delivery's start: the subscription and where it resumed.
type started struct {
	sub   Subscription
	after string
}

func (c *wsConn) writer(ctx context.Context, subs <-chan started) {
	cfg := c.dc.cfg
	ping := time.NewTicker(cfg.PingPeriod)
	defer ping.Stop()
	var drain <-chan time.Time
	draining := c.dc.draining
	var expired <-chan time.Time
	if !c.expires.IsZero() {
		t := time.NewTimer(time.Until(c.expires))
		defer t.Stop()
		expired = t.C
	}
	write := func(b []byte) bool {
		_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteWait))
		if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
			c.closeWith(websocket.CloseAbnormalClosure, "")
			return false
		}
		return true
	}
	var sub Subscription
	var items <-chan feed.Item
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	for {
		select {
		case st := <-subs:
			sub, items, subs = st.sub, st.sub.C(), nil
			b, _ := json.Marshal(map[string]any{"type": "ready", "driver_id": c.driverID, "session": c.session, "resume_after": st.after})
			write(b)
		case <-c.done:
			return
		case <-c.closing:
			if c.code != websocket.CloseAbnormalClosure {
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.text), time.Now().Add(cfg.WriteWait))
			}
			// Give the client a moment to answer the close, then cut.
			select {
			case <-c.done:
			case <-time.After(time.Second):
			}
			_ = c.ws.Close()
			return
		case b := <-c.send:
			write(b)
		case it, ok := <-items:
			if !ok {
				if errors.Is(sub.Err(), feed.ErrSlowConsumer) {
					c.closeWith(CloseSlow, "too slow; reconnect and resume")
				} else {
					c.closeWith(CloseReconnect, "reconnect")
				}
				items = nil
				continue
			}
			if b := c.frame(ctx, it); b != nil {
				write(b)
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteWait)); err != nil {
				c.closeWith(websocket.CloseAbnormalClosure, "")
			}
			// Fallback to the live replaced and suspended messages: is
			// this still the driver's current connection, of a driver
			// allowed to work?
			if cur, err := c.dc.cmds.Session(ctx, c.driverID); err == nil && cur > c.session {
				c.closeWith(CloseReplaced, "replaced by a newer connection")
			}
			if ok, err := c.dc.drivers.IsSuspended(ctx, c.driverID); err == nil && ok {
				c.closeWith(CloseSuspended, "driver suspended by ops")
			}
		case <-draining:
			draining = nil
			drain = time.After(mrand.N(cfg.DrainWindow) + time.Millisecond)
		case <-drain:
			c.closeWith(CloseReconnect, "node draining; reconnect")
		case <-expired:
			c.closeWith(CloseTokenExpired, "token expired; reconnect with a fresh token")
		}
	}
}

// frame encodes a feed item for the client; nil means nothing to send.
func (c *wsConn) frame(ctx context.Context, it feed.Item) []byte {
	if it.Reset {
		var st any
		if ds, err := c.dc.drivers.Get(ctx, c.driverID); err == nil {
			st = ds
		}
		b, _ := json.Marshal(map[string]any{"type": "reset", "position": it.Position, "data": map[string]any{"driver": st}})
		return b
	}
	ev := it.Event
	if ev.Type == dispatch.CmdReplaced {
		var d struct {
			Session string `json:"session"`
		}
		if json.Unmarshal(ev.Data, &d) == nil && d.Session > c.session {
			c.closeWith(CloseReplaced, "replaced by a newer connection")
		}
		return nil
	}
	if ev.Type == dispatch.CmdSuspended {
		c.closeWith(CloseSuspended, "driver suspended by ops")
		return nil
	}
	b, err := it.JSON()
	if err != nil {
		return nil
	}
	return b
}

// handle processes one message of c by calling the services; errors are
// replied, the connection stays open.
func (dc *Channel) handle(ctx context.Context, c *wsConn, b []byte) {
	m, err := decodeWSMessage(b)
	if err != nil {
		c.replyErr(m.Ref, err)
		return
	}
	switch m.Type {
	case "hello":
		c.replyErr(m.Ref, invalidMsg("hello must be the first message"))
	case "locations":
		dc.locations(ctx, c, m)
	case "ack":
		acked, err := dc.cmds.Ack(ctx, c.driverID, m.ID)
		if err != nil {
			c.replyErr(m.Ref, err)
			return
		}
		c.reply(map[string]any{"type": "acked", "ref": m.Ref, "id": acked})
	default: // trip actions
		var snap trip.Snapshot
		var err error
		if m.Type == trip.ActAccept {
			snap, err = dc.trips.Accept(ctx, m.Trip, c.actor)
		} else {
			snap, err = dc.trips.Act(ctx, m.Trip, c.actor, m.Type, m.Reason)
		}
		if err != nil {
			var te *trip.TransitionError
			if errors.As(err, &te) {
				c.reply(wsError{Type: "error", Ref: m.Ref, Code: "invalid_transition", Message: te.Error()})
				return
			}
			c.replyErr(m.Ref, err)
			return
		}
		c.reply(map[string]any{"type": "ok", "ref": m.Ref, "action": m.Type, "trip": snap})
	}
}

type wsAck struct {
	Type       string             `json:"type"`
	Ref        string             `json:"ref,omitempty"`
	Seq        int64              `json:"seq"`
	Accepted   int                `json:"accepted"`
	Duplicates int                `json:"duplicates"`
	Rejected   []driver.Rejection `json:"rejected"`
}

// locations applies a batch with the same validation and idempotency as
// POST /v1/drivers/{id}/locations, and acks the highest applied seq.
func (dc *Channel) locations(ctx context.Context, c *wsConn, m wsMessage) {
	// Decoded once, straight from the message: the same pings, limit and
	// errors as the REST batch {"pings":[...]}.
	pings, err := driver.DecodePingList(m.Pings, dc.drivers.Limits().MaxBatch)
	if err != nil {
		if m.pingsUnchecked && !json.Valid(m.Pings) {
			// The message is not JSON after all: refused as a whole, as
			// decodeWSMessage refuses malformed JSON.
			c.replyErr("", malformedWSMessage())
			return
		}
		c.replyErr(m.Ref, err)
		return
	}
	res, err := dc.drivers.Ingest(ctx, c.driverID, pings)
	if err != nil {
		c.replyErr(m.Ref, err)
		return
	}
	c.reply(wsAck{Type: "ack", Ref: m.Ref, Seq: res.LastSeq, Accepted: res.Accepted, Duplicates: res.Duplicates, Rejected: res.Rejected})
}
