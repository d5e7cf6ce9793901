package api

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
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/internal/jsonscan"
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
)

// WSConfig tunes driver WebSockets. Zero values are the documented defaults.
type WSConfig struct {
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

func (c WSConfig) withDefaults() WSConfig {
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

// driverChannel is the driver WebSocket on this node: the open
// connections, one per driver, and what they call.
type driverChannel struct {
	cfg      WSConfig
	cmds     driverCommands // nil: no driver channel
	drivers  driverService  // pings and the driver's state on a reset
	trips    Trips          // trip actions sent over the socket
	log      *slog.Logger
	draining <-chan struct{}
	gauge    prometheus.Gauge // open driver WebSockets
	up       websocket.Upgrader

	mu    sync.Mutex
	conns map[string]*wsConn
	wg    sync.WaitGroup
}

// newDriverChannel sets up the driver channel from cfg (its defaults
// applied) and what its connections call.
func newDriverChannel(cfg WSConfig, cmds driverCommands, drivers driverService, trips Trips,
	log *slog.Logger, draining <-chan struct{}, gauge prometheus.Gauge) *driverChannel {
	dc := &driverChannel{cfg: cfg.withDefaults(), cmds: cmds, drivers: drivers, trips: trips,
		log: log, draining: draining, gauge: gauge, conns: map[string]*wsConn{}}
	dc.up = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		CheckOrigin:      dc.checkOrigin,
	}
	return dc
}

func (s *Server) driverChannelRoutes() {
	s.e.GET("/v1/drivers/:id/ws", guard(s.dc.driverWS, RoleDriver))
}

// WaitWebSockets waits until every driver WebSocket of this node has
// closed (after StartDrain they close within WSConfig.DrainWindow), or ctx
// is done. http.Server.Shutdown does not wait for hijacked connections.
func (s *Server) WaitWebSockets(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.dc.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkOrigin allows native apps (no Origin), the server's own host, and
// the configured origins.
func (dc *driverChannel) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return originAllowed(dc.cfg.Origins, origin) // the CORS rule (cors.go)
}

// driverWS upgrades to the driver WebSocket. Everything that can be refused
// (token, driver, origin, not an upgrade) is refused before the upgrade
// with a JSON error.
func (dc *driverChannel) driverWS(c echo.Context) error {
	cl := claims(c)
	id := c.Param("id")
	if cl.Subject != id {
		return fmt.Errorf("%w: a driver may connect only as itself", ErrForbidden)
	}
	if !driver.ValidID(id) || !trip.ValidID(id) {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "driver id must be 1-64 characters of [A-Za-z0-9_-]"}
	}
	r := c.Request()
	if !websocket.IsWebSocketUpgrade(r) {
		return &Error{Status: http.StatusBadRequest, Code: "upgrade_required", Message: "this endpoint speaks WebSocket only"}
	}
	if !dc.checkOrigin(r) {
		return &Error{Status: http.StatusForbidden, Code: "origin_not_allowed", Message: "origin not allowed"}
	}
	if dc.cmds == nil || dc.trips == nil || dc.drivers == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the driver channel is not served by this node"}
	}
	select {
	case <-dc.draining:
		return &Error{Status: http.StatusServiceUnavailable, Code: "draining", Message: "node is draining; connect to another"}
	default:
	}
	ws, err := dc.up.Upgrade(c.Response(), r, nil)
	if err != nil {
		return nil // the upgrader has answered
	}
	dc.wg.Add(1)
	defer dc.wg.Done()
	dc.gauge.Inc()
	defer dc.gauge.Dec()
	conn := newWSConn(dc, ws, id, cl)
	conn.serve(context.WithoutCancel(r.Context()))
	return nil
}

// wsConn is one driver WebSocket: the handler goroutine reads, one writer
// goroutine writes (commands from the feed, replies, pings, the close).
type wsConn struct {
	dc       *driverChannel
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

func newWSConn(dc *driverChannel, ws *websocket.Conn, id string, cl *Claims) *wsConn {
	// Sessions sort by start time, so a connection is only ever replaced by
	// a newer one, even when two handshakes overlap.
	var b [4]byte
	_, _ = rand.Read(b[:])
	session := fmt.Sprintf("%016x-%s", time.Now().UnixNano(), hex.EncodeToString(b[:]))
	return &wsConn{dc: dc, ws: ws, driverID: id, session: session,
		actor: trip.Actor{Role: trip.RoleDriver, ID: cl.Subject},
		send:  make(chan []byte, dc.cfg.SendQueue), closing: make(chan struct{}), done: make(chan struct{}),
		expires: tokenExpiry(cl)}
}

// tokenExpiry is when cl's token expires; zero when it has no exp.
func tokenExpiry(cl *Claims) time.Time {
	if cl == nil || cl.ExpiresAt == nil {
		return time.Time{}
	}
	return cl.ExpiresAt.Time
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
	ae, known := toError(err)
	if !known {
		c.dc.log.Error("ws: request failed", "driver", c.driverID, "err", err)
	}
	c.reply(wsError{Type: "error", Ref: ref, Code: ae.Code, Message: ae.Message})
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
func (dc *driverChannel) register(ctx context.Context, c *wsConn) {
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
func (dc *driverChannel) unregister(ctx context.Context, c *wsConn) {
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
	sub   *feed.Subscription
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
	var sub *feed.Subscription
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
			// Fallback to the live replaced message: is this still the
			// driver's current connection?
			if cur, err := c.dc.cmds.Session(ctx, c.driverID); err == nil && cur > c.session {
				c.closeWith(CloseReplaced, "replaced by a newer connection")
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
	b, err := it.JSON()
	if err != nil {
		return nil
	}
	return b
}

// handle processes one message of c by calling the services; errors are
// replied, the connection stays open.
func (dc *driverChannel) handle(ctx context.Context, c *wsConn, b []byte) {
	m, err := decodeWSMessage(b)
	if err != nil {
		c.replyErr(m.Ref, err)
		return
	}
	switch m.Type {
	case "hello":
		c.replyErr(m.Ref, &Error{Status: http.StatusBadRequest, Code: "invalid_message", Message: "hello must be the first message"})
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
func (dc *driverChannel) locations(ctx context.Context, c *wsConn, m wsMessage) {
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

// wsMessage is a client → server message.
type wsMessage struct {
	Type   string          `json:"type"`
	Ref    string          `json:"ref,omitempty"`
	LastID string          `json:"last_id,omitempty"`
	Pings  json.RawMessage `json:"pings,omitempty"`
	ID     string          `json:"id,omitempty"`
	Trip   string          `json:"trip,omitempty"`
	Reason string          `json:"reason,omitempty"`

	// pingsUnchecked: Pings was only delimited, not checked to be valid
	// JSON (decodeWSFast); DecodePingList checks what it decodes.
	pingsUnchecked bool
}

// wsFields are wsMessage's keys.
var wsFields = [...]string{"type", "ref", "last_id", "pings", "id", "trip", "reason"}

// decodeWSFast decodes the common message shape without encoding/json,
// giving what json.Unmarshal gives: plain keys spelled like wsMessage's,
// each once, plain strings (printable ASCII, no escapes) for the string
// fields, an array for pings, which is only delimited (pingsUnchecked) and
// only for a locations message. ok is false for anything else, and
// encoding/json decides. A locations batch is then read once, by
// DecodePingList, instead of three times.
func decodeWSFast(b []byte) (m wsMessage, ok bool) {
	var seen uint8
	s := jsonscan.Open(b)
	for s.Next() {
		var dst *string
		var bit uint8
		switch string(s.Key) {
		case "type":
			bit, dst = 1<<0, &m.Type
		case "ref":
			bit, dst = 1<<1, &m.Ref
		case "last_id":
			bit, dst = 1<<2, &m.LastID
		case "pings":
			bit = 1 << 3
		case "id":
			bit, dst = 1<<4, &m.ID
		case "trip":
			bit, dst = 1<<5, &m.Trip
		case "reason":
			bit, dst = 1<<6, &m.Reason
		default:
			if !s.Ignorable(wsFields[:]) {
				return wsMessage{}, false
			}
			continue
		}
		if seen&bit != 0 {
			return wsMessage{}, false
		}
		seen |= bit
		if dst == nil {
			if s.Kind != jsonscan.Array {
				return wsMessage{}, false
			}
			m.Pings, m.pingsUnchecked = s.Val, true
			continue
		}
		if s.Kind != jsonscan.String || !s.Plain {
			return wsMessage{}, false
		}
		*dst = string(s.Val[1 : len(s.Val)-1])
	}
	if !s.OK() || m.pingsUnchecked && m.Type != "locations" {
		return wsMessage{}, false
	}
	return m, true
}

func malformedWSMessage() error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: "malformed JSON message"}
}

var wsTripActions = map[string]bool{trip.ActAccept: true, trip.ActDecline: true, trip.ActArrived: true,
	trip.ActPickup: true, trip.ActComplete: true, trip.ActCancel: true}

func invalidMsg(msg string) error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_message", Message: msg}
}

// decodeWSMessage parses and validates one client message (untrusted).
// Unknown fields are ignored (newer clients), unknown types are errors.
//
// A message decodeWSFast decodes and checkWSMessage accepts is taken as is;
// anything else is decoded again by encoding/json, whose errors are the
// reference.
func decodeWSMessage(b []byte) (wsMessage, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return wsMessage{}, &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: "a message is one JSON object"}
	}
	if m, ok := decodeWSFast(b); ok {
		if m, err := checkWSMessage(m); err == nil {
			return m, nil
		}
	}
	var m wsMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return wsMessage{}, malformedWSMessage()
	}
	return checkWSMessage(m)
}

// checkWSMessage validates a decoded message.
func checkWSMessage(m wsMessage) (wsMessage, error) {
	if len(m.Ref) > 64 {
		m.Ref = ""
		return m, invalidMsg("ref is at most 64 characters")
	}
	switch {
	case m.Type == "hello":
		if m.LastID != "" {
			if _, err := feed.ParseID(m.LastID); err != nil {
				return m, invalidMsg("last_id must be a command id like 1732521600000-0")
			}
		}
	case m.Type == "locations":
		p := bytes.TrimSpace(m.Pings)
		if len(p) == 0 || p[0] != '[' {
			return m, invalidMsg("locations needs pings: [...]")
		}
	case m.Type == "ack":
		if _, err := feed.ParseID(m.ID); err != nil {
			return m, invalidMsg("ack needs the command id")
		}
	case wsTripActions[m.Type]:
		if !trip.ValidID(m.Trip) {
			return m, invalidMsg(m.Type + " needs trip: the trip id")
		}
		if len(m.Reason) > 200 {
			return m, invalidMsg("reason is at most 200 characters")
		}
	case m.Type == "":
		return m, invalidMsg("type is required")
	default:
		t := m.Type
		if len(t) > 32 {
			t = t[:32]
		}
		return m, invalidMsg(fmt.Sprintf("unknown message type %q", t))
	}
	return m, nil
}
