package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hextrack/hextrack/api/client"
)

// wsConn is a driver's WebSocket (GET /v1/drivers/{id}/ws, JSON text
// frames): hello{last_id} on every (re)connect, locations{pings}, ack{id}
// for commands; the server answers ack{seq} for pings and sends commands
// with an event id, replayed after a reconnect until acked.
//
// Pings written but not yet acked stay pending and are sent again after a
// reconnect (the server drops repeated seqs), so a dropped connection
// loses nothing. One reader goroutine per connection; writes are
// serialised by a mutex.
type wsConn struct {
	c      *client.Client
	id     string
	st     *Stats
	dialer *websocket.Dialer
	cmds   chan Event

	mu      sync.Mutex
	ws      *websocket.Conn
	pending []sentPing // unacked, seq order
	lastCmd string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

type sentPing struct {
	p  client.Ping
	at time.Time
}

// errNotConnected: the socket is down; the caller keeps its pings.
var errNotConnected = errors.New("sim: websocket not connected")

func newWSConn(ctx context.Context, c *client.Client, id string, st *Stats, d *websocket.Dialer) *wsConn {
	ctx, cancel := context.WithCancel(ctx)
	w := &wsConn{c: c, id: id, st: st, dialer: d, cmds: make(chan Event, 16), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go w.run()
	return w
}

func (w *wsConn) Commands() <-chan Event { return w.cmds }

func (w *wsConn) Close() {
	w.cancel()
	w.mu.Lock()
	if w.ws != nil {
		_ = w.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = w.ws.Close()
	}
	w.mu.Unlock()
	<-w.done
}

func (w *wsConn) url() string {
	u := w.c.BaseURL()
	u = "ws" + strings.TrimPrefix(u, "http")
	return u + "/v1/drivers/" + url.PathEscape(w.id) + "/ws"
}

func (w *wsConn) run() {
	defer close(w.done)
	for attempt := 0; w.ctx.Err() == nil; attempt++ {
		h := http.Header{"Authorization": {"Bearer " + w.c.Token()}}
		ws, resp, err := w.dialer.DialContext(w.ctx, w.url(), h)
		if err != nil {
			if w.ctx.Err() != nil {
				return
			}
			if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
				w.st.Err(&client.Error{Status: resp.StatusCode, Code: "ws_refused", Message: "websocket refused"})
				return
			}
			w.st.Err(err)
			if !sleepCtx(w.ctx, time.Duration(min(attempt+1, 10))*300*time.Millisecond) {
				return
			}
			continue
		}
		if attempt > 0 {
			w.st.C.Reconnects.Add(1)
		}
		w.mu.Lock()
		w.ws = ws
		err = ws.WriteJSON(map[string]any{"type": "hello", "last_id": w.lastCmd})
		if err == nil && len(w.pending) > 0 {
			ps := make([]client.Ping, len(w.pending))
			for i, s := range w.pending {
				ps[i] = s.p
			}
			err = ws.WriteJSON(map[string]any{"type": "locations", "pings": ps})
		}
		w.mu.Unlock()
		if err == nil {
			attempt = 0
			err = w.read(ws)
		}
		w.mu.Lock()
		w.ws = nil
		w.mu.Unlock()
		_ = ws.Close()
		if w.ctx.Err() != nil {
			return
		}
		w.st.Err(err)
	}
}

type wsFrame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Seq     int64           `json:"seq"`
	Topic   string          `json:"topic"`
	TS      time.Time       `json:"ts"`
	Data    json.RawMessage `json:"data"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
}

func (w *wsConn) read(ws *websocket.Conn) error {
	ws.SetReadLimit(1 << 20)
	for {
		_ = ws.SetReadDeadline(time.Now().Add(90 * time.Second))
		var f wsFrame
		if err := ws.ReadJSON(&f); err != nil {
			return err
		}
		switch {
		case f.Type == "ack" && f.ID == "":
			w.acked(f.Seq)
		case f.Type == "ready" || f.Type == "acked" || f.Type == "ok":
			// Session start, a command ack confirmed, an action done.
		case f.Type == "error":
			w.st.Err(errors.New("ws error: " + f.Code + ": " + f.Message))
		case f.ID != "":
			w.mu.Lock()
			w.lastCmd = f.ID
			w.mu.Unlock()
			select {
			case w.cmds <- Event{ID: f.ID, Type: f.Type, Topic: f.Topic, TS: f.TS, Data: f.Data}:
			case <-w.ctx.Done():
				return nil
			}
		}
	}
}

func (w *wsConn) acked(seq int64) {
	now := time.Now()
	w.mu.Lock()
	n := 0
	for n < len(w.pending) && w.pending[n].p.Seq <= seq {
		w.st.Ack.Observe(now.Sub(w.pending[n].at))
		n++
	}
	w.pending = append(w.pending[:0], w.pending[n:]...)
	w.mu.Unlock()
	w.st.C.PingsAcked.Add(int64(n))
}

func (w *wsConn) Send(_ context.Context, pings []client.Ping) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ws == nil {
		return errNotConnected
	}
	_ = w.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for len(pings) > 0 {
		n := min(len(pings), 500)
		if err := w.ws.WriteJSON(map[string]any{"type": "locations", "pings": pings[:n]}); err != nil {
			_ = w.ws.Close() // the reader notices and reconnects
			return err
		}
		now := time.Now()
		for _, p := range pings[:n] {
			w.pending = append(w.pending, sentPing{p, now})
		}
		w.st.C.Requests.Add(1)
		pings = pings[n:]
	}
	return nil
}

func (w *wsConn) Ack(_ context.Context, id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ws == nil {
		return errNotConnected
	}
	_ = w.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return w.ws.WriteJSON(map[string]any{"type": "ack", "id": id})
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
