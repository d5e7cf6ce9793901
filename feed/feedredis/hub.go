package feedredis

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
)

// listener is a local consumer of one topic: a Subscription or a long-poll
// waiter. deliver is called by the connection's receive goroutine and must
// never block. recover is called after the topic was re-subscribed on a new
// pub/sub connection (messages may have been lost in between).
type listener interface {
	deliver(m *wireMsg)
	recover()
}

// hub owns the node's pub/sub connections: one for all topics on a
// standalone/Sentinel Redis, one per hash slot in use under Cluster (a
// sharded subscription lives on the slot's owner). Lock order: hub.mu before
// any Subscription.mu; never the reverse.
type hub struct {
	b      *Broker
	mu     sync.Mutex
	conns  map[int]*conn
	topics map[string]*topic // by channel
	closed bool
	// checking: the position check goroutine runs (started with the first
	// topic, see position.go).
	checking bool
	// checkFailing: the last position read failed (owned by the check
	// goroutine).
	checkFailing bool
}

type topic struct {
	name, channel string
	c             *conn
	set           map[listener]struct{}
	list          atomic.Pointer[[]listener] // copy-on-write snapshot for fan-out
	ready         chan struct{}              // closed once the current (S)SUBSCRIBE is confirmed
	confirmed     bool
	everConfirmed bool
}

type conn struct {
	h       *hub
	key     int
	probe   string
	ctx     context.Context
	cancel  context.CancelFunc
	ps      *redis.PubSub     // current connection; nil while (re)connecting
	pending map[string]int    // channel → SUBSCRIBEs sent on ps and not yet confirmed
	topics  map[string]*topic // by channel
	// probe state for the current ps
	probeReady chan struct{}
	probeGot   atomic.Int64
	// down: the connection stayed broken for DownAfter; its subscribers
	// were sent away and new ones are refused until it is back.
	down bool
}

func newHub(b *Broker) *hub {
	return &hub{b: b, conns: map[int]*conn{}, topics: map[string]*topic{}}
}

// join adds l to topic and returns the channel closed when the topic's
// subscription is active on Redis.
func (h *hub) join(name string, l listener) (<-chan struct{}, error) {
	ch := feed.Channel(h.b.cfg.Prefix, name)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, feed.ErrClosed
	}
	t := h.topics[ch]
	if t != nil && t.c.down {
		// The topic outlived its subscriptions (a long-poll waiter, or a
		// subscription ended by giveUp that has not left yet): its
		// connection is still down, so refuse at once like a new topic.
		return nil, feed.ErrUnavailable
	}
	if t == nil {
		key := 0
		if h.b.sharded {
			key = slot(ch)
		}
		c := h.conns[key]
		if c != nil && c.down {
			return nil, feed.ErrUnavailable
		}
		if c == nil {
			tag, _ := feed.HashTag(name)
			if !h.b.sharded {
				tag = "node"
			}
			c = h.newConn(key, tag)
		}
		if !h.checking && h.b.cfg.PositionCheck > 0 {
			h.checking = true
			h.b.wg.Go(h.checkLoop)
		}
		t = &topic{name: name, channel: ch, c: c, set: map[listener]struct{}{}, ready: make(chan struct{})}
		h.topics[ch] = t
		c.topics[ch] = t
		if c.ps != nil {
			c.pending[ch]++
			if err := c.subscribe(c.ps, ch); err != nil {
				// The connection is broken; closing it makes run() start a
				// new one, which subscribes every topic again.
				_ = c.ps.Close()
			}
		}
	}
	t.set[l] = struct{}{}
	t.publish()
	if _, isSub := l.(*Subscription); isSub {
		h.b.m.subscribers.Inc()
	}
	return t.ready, nil
}

// leave removes l; the last listener of a topic unsubscribes it on Redis.
func (h *hub) leave(name string, l listener) {
	ch := feed.Channel(h.b.cfg.Prefix, name)
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[ch]
	if t == nil {
		return
	}
	if _, ok := t.set[l]; !ok {
		return
	}
	delete(t.set, l)
	if _, isSub := l.(*Subscription); isSub {
		h.b.m.subscribers.Dec()
	}
	t.publish()
	if len(t.set) > 0 {
		return
	}
	delete(h.topics, ch)
	c := t.c
	delete(c.topics, ch)
	if c.ps != nil && !h.closed {
		if c.h.b.sharded {
			_ = c.ps.SUnsubscribe(c.ctx, ch)
		} else {
			_ = c.ps.Unsubscribe(c.ctx, ch)
		}
	}
	if len(c.topics) == 0 && h.b.sharded {
		// Under Cluster a connection serves one slot; drop it when idle.
		delete(h.conns, c.key)
		c.stop()
	}
}

func (t *topic) publish() {
	l := make([]listener, 0, len(t.set))
	for x := range t.set {
		l = append(l, x)
	}
	t.list.Store(&l)
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	var ls []listener
	for _, t := range h.topics {
		for l := range t.set {
			ls = append(ls, l)
		}
	}
	for _, c := range h.conns {
		c.stop()
	}
	h.mu.Unlock()
	for _, l := range ls {
		if s, ok := l.(*Subscription); ok {
			s.closeWith(feed.ErrClosed)
		}
	}
}

// newConn starts a pub/sub connection goroutine; h.mu is held.
func (h *hub) newConn(key int, tag string) *conn {
	ctx, cancel := context.WithCancel(h.b.ctx)
	c := &conn{
		h: h, key: key, probe: probeChannel(h.b.cfg.Prefix, tag, h.b.cfg.NodeID),
		ctx: ctx, cancel: cancel, pending: map[string]int{}, topics: map[string]*topic{},
	}
	h.conns[key] = c
	h.b.wg.Go(c.run)
	return c
}

// stop ends the connection goroutine; h.mu is held. Closing ps unblocks
// Receive, which does not watch its ctx while reading.
func (c *conn) stop() {
	c.cancel()
	if c.ps != nil {
		_ = c.ps.Close()
	}
}

func (c *conn) subscribe(ps *redis.PubSub, channels ...string) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.h.b.cfg.SubscribeTimeout)
	defer cancel()
	if c.h.b.sharded {
		return ps.SSubscribe(ctx, channels...)
	}
	return ps.Subscribe(ctx, channels...)
}

// run keeps one pub/sub connection alive: open, subscribe the probe channel
// and every topic, receive until an error or a missed probe, repeat.
func (c *conn) run() {
	log := c.h.b.cfg.Logger
	backoff := 50 * time.Millisecond
	lost := time.Now() // since when the connection is not up
	for first := true; c.ctx.Err() == nil; first = false {
		if !first {
			c.h.b.m.resubscribes.Inc()
		}
		ps, err := c.open()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			if d := c.h.b.cfg.DownAfter; d > 0 && time.Since(lost) >= d {
				c.giveUp()
			}
			log.Warn("feed: pub/sub connect failed", "err", err, "retry_in", backoff)
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		c.h.mu.Lock()
		c.down = false
		c.h.mu.Unlock()
		epochDone := make(chan struct{})
		var pw sync.WaitGroup
		pw.Go(func() { c.probeLoop(ps, epochDone) })
		err = c.receive(ps)
		close(epochDone)
		_ = ps.Close()
		pw.Wait()
		c.h.mu.Lock()
		if c.ps == ps {
			c.ps = nil
		}
		c.h.mu.Unlock()
		lost = time.Now()
		if c.ctx.Err() == nil {
			log.Warn("feed: pub/sub connection lost; resubscribing", "err", err, "probe", c.probe)
		}
	}
}

// giveUp marks the connection down and ends its subscriptions with
// ErrUnavailable: their clients reconnect, through the load balancer, to a
// node that reaches Redis, instead of waiting here in silence. Long-poll
// waiters are left alone (they time out on their own). The connection keeps
// retrying; once it is back new subscriptions are accepted again.
func (c *conn) giveUp() {
	var subs []*Subscription
	c.h.mu.Lock()
	if !c.down {
		c.down = true
		for _, t := range c.topics {
			for l := range t.set {
				if s, ok := l.(*Subscription); ok {
					subs = append(subs, s)
				}
			}
		}
	}
	c.h.mu.Unlock()
	if len(subs) > 0 {
		c.h.b.cfg.Logger.Warn("feed: redis unreachable; ending subscriptions so their clients move to another node",
			"subscriptions", len(subs), "down_after", c.h.b.cfg.DownAfter)
	}
	for _, s := range subs {
		s.closeWith(feed.ErrUnavailable)
	}
}

// open creates a new PubSub and subscribes the probe channel and every
// current topic. Topics are re-armed: their ready channel reopens until the
// new subscription is confirmed, and their listeners recover then.
func (c *conn) open() (*redis.PubSub, error) {
	rdb := c.h.b.rdb
	var ps *redis.PubSub
	if c.h.b.sharded {
		ps = rdb.SSubscribe(c.ctx) // connection made by the first SSubscribe (probe: our slot)
	} else {
		ps = rdb.Subscribe(c.ctx)
	}
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.ps = ps
	c.pending = map[string]int{c.probe: 1}
	c.probeReady = make(chan struct{})
	channels := []string{c.probe}
	for ch, t := range c.topics {
		if t.confirmed {
			t.confirmed = false
			t.ready = make(chan struct{})
		}
		c.pending[ch] = 1
		channels = append(channels, ch)
	}
	if err := c.subscribe(ps, channels...); err != nil {
		_ = ps.Close()
		c.ps = nil
		return nil, err
	}
	return ps, nil
}

func (c *conn) receive(ps *redis.PubSub) error {
	for {
		msg, err := ps.Receive(c.ctx)
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
				c.confirmed(ps, m.Channel)
			}
		case *redis.Message:
			if m.Channel == c.probe {
				if n, err := strconv.ParseInt(m.Payload, 10, 64); err == nil {
					c.probeGot.Store(n)
				}
				continue
			}
			c.dispatch(m)
		}
	}
}

func (c *conn) confirmed(ps *redis.PubSub, ch string) {
	var recover []listener
	c.h.mu.Lock()
	if c.ps != ps {
		c.h.mu.Unlock()
		return
	}
	if n := c.pending[ch]; n > 1 {
		c.pending[ch] = n - 1
		c.h.mu.Unlock()
		return
	}
	delete(c.pending, ch)
	if ch == c.probe {
		close(c.probeReady)
	} else if t := c.topics[ch]; t != nil && !t.confirmed {
		t.confirmed = true
		close(t.ready)
		if t.everConfirmed {
			recover = *t.list.Load()
		}
		t.everConfirmed = true
	}
	c.h.mu.Unlock()
	if len(recover) > 0 {
		c.h.b.m.recoveries.Add(float64(len(recover)))
		c.h.b.m.catchups.WithLabelValues(triggerResubscribe).Add(float64(len(recover)))
	}
	for _, l := range recover {
		l.recover()
	}
}

func (c *conn) dispatch(m *redis.Message) {
	c.h.mu.Lock()
	t := c.topics[m.Channel]
	c.h.mu.Unlock()
	if t == nil {
		return
	}
	w, ok := decodeWire(t.name, m.Payload)
	if !ok {
		c.h.b.cfg.Logger.Warn("feed: malformed pub/sub message ignored", "channel", m.Channel)
		return
	}
	c.h.b.m.lag.Observe(time.Since(w.ev.TS).Seconds())
	list := *t.list.Load()
	if len(list) > 0 {
		// Encoded once here rather than by each subscriber's stream.
		if b, err := json.Marshal(w.ev); err == nil {
			w.enc = b
		}
	}
	for _, l := range list {
		l.deliver(w)
	}
}

// probeLoop publishes a counter on the probe channel every ProbeInterval and
// closes ps when the previous probe has not come back within ProbeTimeout:
// the connection is dead or silently stalled. Closing ps makes receive
// return, and run reconnects.
func (c *conn) probeLoop(ps *redis.PubSub, done <-chan struct{}) {
	cfg := c.h.b.cfg
	c.h.mu.Lock()
	ready := c.probeReady
	c.h.mu.Unlock()
	select {
	case <-ready:
	case <-done:
		return
	case <-time.After(cfg.SubscribeTimeout):
		cfg.Logger.Warn("feed: probe subscription not confirmed; reconnecting", "probe", c.probe)
		_ = ps.Close()
		return
	}
	tick := time.NewTicker(cfg.ProbeInterval)
	defer tick.Stop()
	var sent int64
	var sentAt time.Time
	for {
		if sent == 0 || c.probeGot.Load() >= sent {
			sent = time.Now().UnixNano()
			sentAt = time.Now()
			ctx, cancel := context.WithTimeout(c.ctx, cfg.ProbeTimeout)
			var err error
			if c.h.b.sharded {
				err = c.h.b.rdb.SPublish(ctx, c.probe, sent).Err()
			} else {
				err = c.h.b.rdb.Publish(ctx, c.probe, sent).Err()
			}
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				cfg.Logger.Warn("feed: probe publish failed", "err", err)
			}
		} else if time.Since(sentAt) >= cfg.ProbeTimeout && c.ctx.Err() == nil {
			cfg.Logger.Warn("feed: liveness probe missed; reconnecting pub/sub", "probe", c.probe, "waited", time.Since(sentAt))
			_ = ps.Close()
			return
		}
		select {
		case <-tick.C:
		case <-done:
			return
		}
	}
}
