package client

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/gorilla/websocket"
)

// session is one connection of a DriverWS: the hello that resumes
// commands after the last ack, a reader handling the server's messages and
// a writer sending the queued pings. It ends with the connection, failing
// the requests in flight; the DriverWS then dials the next one. The state
// that outlives it (outbox, cursors, pending requests) is the DriverWS's,
// under its mutex.
type session struct {
	d    *DriverWS
	conn *websocket.Conn
	up   chan struct{} // closed at the first ready (DialDriver waits for it)
}

// serve runs the connection until it ends and returns its close code.
func (s *session) serve() int {
	d, conn := s.d, s.conn
	conn.SetReadLimit(1 << 20)
	_ = conn.SetReadDeadline(time.Now().Add(90 * time.Second))
	conn.SetPingHandler(func(a string) error {
		_ = conn.SetReadDeadline(time.Now().Add(90 * time.Second))
		return conn.WriteControl(websocket.PongMessage, []byte(a), time.Now().Add(5*time.Second))
	})
	d.mu.Lock()
	d.conn = conn
	d.sentBatch = 0
	err := d.writeLocked(map[string]any{"type": "hello", "last_id": d.acked})
	d.mu.Unlock()
	code := websocket.CloseAbnormalClosure
	stopWriter := make(chan struct{})
	writerDone := make(chan struct{})
	if err == nil {
		go func() { defer close(writerDone); s.writer(stopWriter) }()
		code = s.reader()
	} else {
		close(writerDone)
	}
	close(stopWriter)
	_ = conn.Close()
	<-writerDone
	d.mu.Lock()
	d.conn, d.connected, d.sentBatch = nil, false, 0
	for ref, ch := range d.pending {
		close(ch)
		delete(d.pending, ref)
	}
	d.mu.Unlock()
	return code
}

// reader handles server messages until the connection ends.
func (s *session) reader() int {
	d, conn := s.d, s.conn
	go func() {
		<-d.ctx.Done()
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
		_ = conn.Close()
	}()
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return websocket.CloseAbnormalClosure
		}
		_ = conn.SetReadDeadline(time.Now().Add(90 * time.Second))
		var head wsHead
		if json.Unmarshal(b, &head) != nil {
			continue
		}
		switch {
		case head.Type == "ready":
			s.ready()
		case head.Ref == "loc": // ack{seq}, or an error
			s.locations(head, b)
		case head.Ref != "":
			s.reply(head, b)
		case head.ID != "" || head.Type == "reset":
			if !s.command(head, b) {
				return websocket.CloseNormalClosure
			}
		}
	}
}

// wsHead is what tells the server's messages apart.
type wsHead struct {
	Type     string `json:"type"`
	Ref      string `json:"ref"`
	ID       string `json:"id"`
	Position string `json:"position"`
}

// ready: the server resumed the driver; requests and pings may go.
func (s *session) ready() {
	d := s.d
	d.mu.Lock()
	d.connected = true
	d.mu.Unlock()
	if s.up != nil {
		select {
		case <-s.up:
		default:
			close(s.up)
		}
	}
	d.poke()
}

// locations handles the answer to the batch in flight: an ack, or an
// error that either sends the batch again later or drops it.
func (s *session) locations(head wsHead, b []byte) {
	d := s.d
	var a LocationAck
	_ = json.Unmarshal(b, &a)
	var e wsReply
	_ = json.Unmarshal(b, &e)
	retry := head.Type == "error" && retryableLocations(e.Code)
	d.mu.Lock()
	if head.Type == "ack" {
		d.lastAck = a
	}
	switch {
	case retry:
		// The batch stays first in the outbox and goes again
		// after a pause: a refusal for now loses no ping.
		d.sentBatch = 0
		d.retryAt = time.Now().Add(locationRetry)
	case d.sentBatch > 0:
		// Acked, or refused for good (malformed, too large):
		// the batch is done.
		d.outbox = append(d.outbox[:0:0], d.outbox[d.sentBatch:]...)
		d.sentBatch = 0
	}
	d.mu.Unlock()
	if head.Type == "ack" && d.cfg.OnAck != nil {
		d.cfg.OnAck(a)
	}
	if !retry {
		d.poke()
	}
}

// reply hands the answer to a request to the caller waiting for it.
func (s *session) reply(head wsHead, b []byte) {
	d := s.d
	r := wsReply{Raw: b}
	_ = json.Unmarshal(b, &r)
	d.mu.Lock()
	ch := d.pending[head.Ref]
	delete(d.pending, head.Ref)
	d.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

// command delivers a command (or a reset) not delivered before; false
// when the DriverWS is closing.
func (s *session) command(head wsHead, b []byte) bool {
	d := s.d
	c := Command{}
	_ = json.Unmarshal(b, &c)
	d.mu.Lock()
	fresh := head.Type == "reset" || cmpID(c.ID, d.seen) > 0
	if fresh && c.ID != "" {
		d.seen = c.ID
	}
	if head.Type == "reset" {
		d.seen = head.Position
	}
	d.mu.Unlock()
	if fresh {
		select {
		case d.cmds <- c:
		case <-d.ctx.Done():
			return false
		}
	}
	return true
}

// locationRetry is the pause before a batch refused for now is sent again.
const locationRetry = time.Second

// retryableLocations reports whether a locations batch answered with an
// error of this code is sent again: the server was overloaded, rate
// limited the driver or could not reach Redis. Other errors (malformed,
// too many pings) would fail again, so that batch is dropped.
func retryableLocations(code string) bool {
	switch code {
	case "rate_limited", "unavailable", "internal":
		return true
	}
	return false
}

// writer sends queued pings, one batch in flight at a time (kept until
// acked, so the order holds across reconnects).
func (s *session) writer(stop chan struct{}) {
	d := s.d
	for {
		select {
		case <-stop:
			return
		case <-d.kick:
		case <-time.After(time.Second):
		}
		d.mu.Lock()
		if d.connected && d.sentBatch == 0 && len(d.outbox) > 0 && !time.Now().Before(d.retryAt) {
			n := min(len(d.outbox), d.cfg.Batch)
			if err := d.writeLocked(map[string]any{"type": "locations", "ref": "loc", "pings": d.outbox[:n]}); err == nil {
				d.sentBatch = n
			}
		}
		d.mu.Unlock()
	}
}
