package feedredis

import (
	"context"
	"sync"
	"time"

	"github.com/hextrack/hextrack/feed"
)

// chanCap is the capacity of a subscription's channel. The rest of its
// Config.BufferSize queue is an overflow slice allocated only while a burst
// is queued, so an idle subscriber costs a few hundred bytes instead of
// BufferSize items (~30 KiB at the default 256).
const chanCap = 4

// queue is a subscription's bounded FIFO of undelivered items: the channel
// the consumer reads (C) plus, once that is full, an overflow slice that a
// pump goroutine moves into the channel as the consumer takes items. The
// pump runs only while the overflow is not empty.
//
// There is one producer at a time (the hub's receive goroutine under
// Subscription.mu while live, the catch-up goroutine otherwise): offer and
// put are never called concurrently. Whoever closes out makes sure nobody
// sends on it any more: close closes it at once unless the pump is running,
// which then closes it after handing over what is queued (or dropping it on
// abort).
type queue struct {
	out  chan feed.Item
	max  int             // bound on queued items (channel + overflow + the pump's in-flight one)
	bctx context.Context // broker lifetime: the pump gives up when it ends

	mu        sync.Mutex
	buf       []feed.Item   // overflow, oldest first; nil when empty
	inflight  bool          // the pump holds one item it is sending
	pumping   bool          // the pump goroutine runs
	space     chan struct{} // 1-slot: the pump made room (for a waiting put)
	quit      chan struct{} // closed by abort: the pump drops what is left
	aborted   bool
	closing   bool // close was called: out is closed once the overflow is out
	outClosed bool
	start     func(func()) // runs the pump goroutine (Broker.wg.Go)
}

func newQueue(bctx context.Context, max int, start func(func())) *queue {
	return &queue{out: make(chan feed.Item, min(max, chanCap)), max: max, bctx: bctx, start: start}
}

// queuedLocked is the number of items not yet taken by the consumer.
func (q *queue) queuedLocked() int {
	n := len(q.out) + len(q.buf)
	if q.inflight {
		n++
	}
	return n
}

// offer queues it without blocking; false: the queue is full (or closed).
func (q *queue) offer(it feed.Item) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.offerLocked(it)
}

func (q *queue) offerLocked(it feed.Item) bool {
	if q.closing || q.aborted {
		return false
	}
	if !q.pumping {
		select {
		case q.out <- it:
			return true
		default:
		}
	}
	if q.queuedLocked() >= q.max {
		return false
	}
	q.buf = append(q.buf, it)
	if !q.pumping {
		q.pumping = true
		q.quit = make(chan struct{})
		if q.space == nil { // set before any pump runs; never replaced
			q.space = make(chan struct{}, 1)
		}
		q.start(q.pump)
	}
	return true
}

// put queues it, waiting for room up to timeout. It returns false when done
// is closed first, and errStall when the consumer took nothing for timeout.
func (q *queue) put(it feed.Item, done <-chan struct{}, timeout time.Duration) error {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		q.mu.Lock()
		if q.offerLocked(it) {
			q.mu.Unlock()
			return nil
		}
		if q.closing || q.aborted {
			q.mu.Unlock()
			return errQueueClosed
		}
		var space chan struct{}
		if q.pumping {
			space = q.space
		}
		q.mu.Unlock()
		if t == nil {
			t = time.NewTimer(timeout)
		}
		if space == nil {
			// Full channel, empty overflow (max <= chanCap): nobody else
			// sends while we wait, so send directly.
			select {
			case q.out <- it:
				return nil
			case <-done:
				return errQueueClosed
			case <-t.C:
				return errStall
			}
		}
		select {
		case <-space:
		case <-done:
			return errQueueClosed
		case <-t.C:
			return errStall
		}
	}
}

// pump moves the overflow into the channel, oldest first.
func (q *queue) pump() {
	for {
		q.mu.Lock()
		q.inflight = false
		if len(q.buf) == 0 || q.aborted {
			q.buf = nil
			q.pumping = false
			if q.closing && !q.outClosed {
				q.outClosed = true
				close(q.out)
			}
			q.mu.Unlock()
			return
		}
		it := q.buf[0]
		q.buf[0] = feed.Item{}
		q.buf = q.buf[1:]
		q.inflight = true
		quit := q.quit
		q.mu.Unlock()
		select {
		case q.out <- it:
		case <-quit:
			continue // aborted: drop it and the rest
		case <-q.bctx.Done():
			q.abort()
			continue
		}
		select {
		case q.space <- struct{}{}:
		default:
		}
	}
}

// close closes the channel once what is queued has been handed over (the
// consumer still reads it, then sees C closed), at once if nothing is in
// the overflow. The caller guarantees no further offer or put.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closing = true
	if !q.pumping && !q.outClosed {
		q.outClosed = true
		close(q.out)
	}
}

// abort drops the overflow: the consumer is gone (Close, ctx) or the broker
// is shutting down, so nobody will read it.
func (q *queue) abort() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.aborted {
		return
	}
	q.aborted = true
	if q.quit != nil {
		close(q.quit)
	}
}

type queueError string

func (e queueError) Error() string { return string(e) }

const (
	errQueueClosed queueError = "feed: subscription closed"
	errStall       queueError = "feed: consumer stalled"
)
