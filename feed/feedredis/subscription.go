package feedredis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hextrack/hextrack/feed"
)

// Subscription delivers one topic's events to one local consumer (an SSE or
// WebSocket connection), resumed from an ID. Read items from C until it is
// closed, then Err tells why.
//
// States: catching up (a goroutine reads the stream after the last delivered
// ID and feeds C, blocking on the consumer; live messages arriving meanwhile
// are buffered, bounded by Config.BufferSize) and live (the hub's receive
// goroutine offers each message to C without blocking; a full C drops the
// subscription with ErrSlowConsumer). A durable live event is delivered only
// if its predecessor in the stream is the last ID delivered; otherwise the
// subscription goes back to catching up from that ID, so a lost pub/sub
// message never becomes a silent gap. A lost message with no successor is
// caught by the node's position check (position.go): a live subscription
// that has not delivered the stream's last ID as read half a
// Config.PositionCheck earlier goes back to catching up the same way, so it
// is delivered within about PositionCheck even if the topic stays quiet.
type Subscription struct {
	b        *Broker
	topic    string
	position string
	q        *queue
	done     chan struct{}

	mu      sync.Mutex
	stop    func() bool // stops the ctx watcher; nil until Subscribe sets it
	last    feed.ID
	lastOK  bool // last is valid (false only for a malformed resume ID)
	live    bool
	pending []*wireMsg
	reread  bool
	closed  bool
	err     error
}

var _ listener = (*Subscription)(nil)

// Subscribe subscribes to topic's live fan-out, then delivers what the
// consumer missed, then live events, with no gap and no duplicate.
//
// lastID "" is a fresh connect: nothing historical is delivered and
// Position() is the stream position to send with a snapshot (take the
// snapshot after Subscribe returns). Otherwise delivery resumes after
// lastID; if continuity from it cannot be proven (trimmed, unknown,
// malformed, future) the first item is a Reset.
//
// The subscription ends when ctx is done, Close is called, the consumer is
// too slow (ErrSlowConsumer), the broker closes (ErrClosed), its pub/sub
// connection stays down for Config.DownAfter (ErrUnavailable) or a stream
// read fails (a wrapped Redis error). Subscribe itself fails if the (S)SUBSCRIBE
// isn't confirmed within Config.SubscribeTimeout.
func (b *Broker) Subscribe(ctx context.Context, topic, lastID string) (*Subscription, error) {
	if _, _, err := feed.ParseTopic(topic); err != nil {
		return nil, err
	}
	s := &Subscription{
		b: b, topic: topic,
		q:    newQueue(b.ctx, b.cfg.BufferSize, b.wg.Go),
		done: make(chan struct{}),
	}
	ready, err := b.hub.join(topic, s)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Subscription, error) {
		s.closeWith(err)
		s.q.close() // no catch-up goroutine was started
		return nil, err
	}
	wait := time.NewTimer(b.cfg.SubscribeTimeout)
	defer wait.Stop()
	select {
	case <-ready:
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-s.done:
		return fail(feed.ErrClosed)
	case <-wait.C:
		return fail(fmt.Errorf("%w: subscribe %s not confirmed within %v", feed.ErrUnavailable, topic, b.cfg.SubscribeTimeout))
	}
	if lastID == "" {
		pos, err := b.Position(ctx, topic)
		if err != nil {
			return fail(err)
		}
		s.position = pos
		s.last, s.lastOK = feed.MustParseID(pos), true
	} else {
		s.position = lastID
		if id, err := feed.ParseID(lastID); err == nil {
			s.last, s.lastOK = id, true
		}
	}
	// A ctx already done runs Close at once, on another goroutine: stop is
	// set under mu, which closeWith reads it under.
	stop := context.AfterFunc(ctx, s.Close)
	s.mu.Lock()
	s.stop = stop
	closed := s.closed
	s.mu.Unlock()
	if closed {
		stop()
	}
	b.wg.Go(func() { s.catchUp(lastID) })
	return s, nil
}

// C returns the items; it is closed when the subscription ends.
func (s *Subscription) C() <-chan feed.Item { return s.q.out }

// Position is where delivery starts: the stream position at subscribe time
// for a fresh connect, else the lastID given to Subscribe.
func (s *Subscription) Position() string { return s.position }

// Topic returns the subscribed topic.
func (s *Subscription) Topic() string { return s.topic }

// Err returns why the subscription ended: nil after Close or ctx
// cancellation, ErrSlowConsumer, ErrClosed, or a read error. Valid once C is
// closed.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription; C is closed soon after (at once if live).
// Items still queued beyond C's own small buffer are dropped: the consumer
// is gone. (After any other ending, such as ErrSlowConsumer, C yields every
// queued item before it closes.)
func (s *Subscription) Close() {
	s.closeWith(nil)
	s.q.abort()
}

func (s *Subscription) closeWith(err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.err = err
	s.pending = nil
	close(s.done)
	if s.live {
		s.q.close() // the hub checks closed under mu: no offer follows
	}
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.b.hub.leave(s.topic, s)
}

// deliver is called by the hub's receive goroutine; it never blocks.
func (s *Subscription) deliver(m *wireMsg) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if !s.live {
		if len(s.pending) < s.b.cfg.BufferSize {
			s.pending = append(s.pending, m)
		} else {
			s.reread = true // durable events are re-read from the stream
		}
		s.mu.Unlock()
		return
	}
	if m.ev.Durable() {
		if m.id.Compare(s.last) <= 0 {
			s.mu.Unlock()
			return // duplicate or older
		}
		if !m.hasPrev || m.prev != s.last {
			// Gap: something between s.last and m was not seen live.
			s.live = false
			s.pending = append(s.pending[:0], m)
			s.mu.Unlock()
			s.b.m.recoveries.Inc()
			s.b.m.catchups.WithLabelValues(triggerChain).Inc()
			s.b.wg.Go(func() { s.catchUp("") })
			return
		}
	}
	if s.q.offer(feed.EncodedItem(m.ev, m.enc)) {
		if m.ev.Durable() {
			s.last = m.id
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.b.m.drops.Inc()
	s.closeWith(feed.ErrSlowConsumer)
}

// recover is called after the topic was re-subscribed on a new connection.
func (s *Subscription) recover() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if !s.live {
		s.reread = true
		s.mu.Unlock()
		return
	}
	s.live = false
	s.mu.Unlock()
	s.b.wg.Go(func() { s.catchUp("") })
}

// push hands an item to the consumer, waiting for room (catch-up only) up
// to StallTimeout; a stalled consumer is dropped. false: closed.
func (s *Subscription) push(it feed.Item) bool {
	switch err := s.q.put(it, s.done, s.b.cfg.StallTimeout); err {
	case nil:
		return true
	case errStall:
		s.b.m.drops.Inc()
		s.closeWith(feed.ErrSlowConsumer)
	}
	return false
}

// catchUp runs while the subscription is not live: it is the queue's only
// producer. start is the raw resume ID on the first run ("" afterwards: use
// s.last).
func (s *Subscription) catchUp(start string) {
	exit := func() { s.q.close() } // only reached when closed
	ctx := s.b.ctx
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			exit()
			return
		}
		after := start
		if after == "" || s.lastOK {
			after = s.last.String()
		}
		s.reread = false
		s.mu.Unlock()
		start = ""

		evs, pos, err := s.b.readAfter(ctx, s.topic, after, s.b.cfg.ReadChunk)
		if err != nil {
			if !errIsReset(err) {
				if ctx.Err() != nil {
					err = feed.ErrClosed
				}
				s.closeWith(err)
				exit()
				return
			}
			s.b.m.resets.Inc()
			if !s.push(feed.Item{Reset: true, Position: pos}) {
				exit()
				return
			}
			s.mu.Lock()
			s.last, s.lastOK = feed.MustParseID(pos), true
			s.mu.Unlock()
			continue
		}
		for _, ev := range evs {
			if !s.push(feed.Item{Event: ev}) {
				exit()
				return
			}
			s.mu.Lock()
			s.last = feed.MustParseID(ev.ID)
			s.mu.Unlock()
		}
		if len(evs) >= s.b.cfg.ReadChunk {
			continue
		}
		// Caught up with the stream as of the read: drain what arrived live.
		switch s.drain() {
		case drainLive:
			return
		case drainClosed:
			exit()
			return
		}
		// drainReread: a gap or a reread request; read the stream again.
	}
}

type drainResult int

const (
	drainLive   drainResult = iota // went live: the hub now feeds out
	drainReread                    // gap or reread request: read the stream again
	drainClosed                    // closed: the caller closes out
)

// drain delivers buffered live messages in order and goes live once none
// are left.
func (s *Subscription) drain() drainResult {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return drainClosed
		}
		if s.reread {
			s.mu.Unlock()
			return drainReread
		}
		if len(s.pending) == 0 {
			s.live = true
			s.mu.Unlock()
			return drainLive
		}
		batch := s.pending
		s.pending = make([]*wireMsg, 0, len(batch))
		last := s.last
		s.mu.Unlock()
		for i, m := range batch {
			if m.ev.Durable() {
				if m.id.Compare(last) <= 0 {
					continue
				}
				if !m.hasPrev || m.prev != last {
					// Gap: put the rest back and read the stream again.
					s.mu.Lock()
					s.pending = append(batch[i:len(batch):len(batch)], s.pending...)
					s.mu.Unlock()
					return drainReread
				}
			}
			if !s.push(feed.EncodedItem(m.ev, m.enc)) {
				return drainClosed
			}
			if m.ev.Durable() {
				last = m.id
				s.mu.Lock()
				s.last = m.id
				s.mu.Unlock()
			}
		}
	}
}
