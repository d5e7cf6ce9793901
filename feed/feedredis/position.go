package feedredis

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
)

// Position check. A durable event reaches live subscribers through its
// pub/sub notice; a lost notice is otherwise noticed only when the topic's
// next notice arrives with a predecessor the subscriber has not seen (the
// broken chain). The last events of a trip (trip.completed, a payment
// result) have no next one, so each node also compares, for every topic with
// local listeners, the stream's last ID with what its listeners have
// delivered, and sends a listener that is behind through the same catch-up
// as a broken chain (a long-poll waiter is woken to read again).
//
// Every Config.PositionCheck/2 the node reads the last ID of every such
// stream in one pipeline (XREVRANGE key + - COUNT 1; under Cluster go-redis
// splits the pipeline per master, each slot's keys going to its owner). A
// listener is behind when it has delivered less than the position read one
// tick earlier: its notice has had half a period to arrive, so a notice
// merely in flight causes no re-read, and a lost one is recovered within
// about PositionCheck of its append.

// positionReadTimeout bounds one tick's read when the period is shorter.
const positionReadTimeout = 5 * time.Second

// positioned is a listener the position check can send back to the stream.
type positioned interface {
	// behind is called with a stream position read at least half a check
	// period ago; a listener that has not delivered it catches up. It
	// reports whether it did. It must not block.
	behind(pos feed.ID) bool
}

var (
	_ positioned = (*Subscription)(nil)
	_ positioned = (*waiter)(nil)
)

// checkLoop runs the position check until the broker closes. It is started
// with the first topic (hub.join) when Config.PositionCheck > 0.
func (h *hub) checkLoop() {
	tick := time.NewTicker(max(h.b.cfg.PositionCheck/2, 5*time.Millisecond))
	defer tick.Stop()
	seen := map[*topic]feed.ID{} // position read at the previous tick
	for {
		select {
		case <-h.b.ctx.Done():
			return
		case <-tick.C:
		}
		seen = h.checkPositions(seen)
	}
}

// checkPositions reads the current position of every topic with listeners,
// sends the listeners behind the previous reading (prev) to catch up, and
// returns the new readings.
func (h *hub) checkPositions(prev map[*topic]feed.ID) map[*topic]feed.ID {
	h.mu.Lock()
	ts := make([]*topic, 0, len(h.topics))
	for _, t := range h.topics {
		ts = append(ts, t)
	}
	h.mu.Unlock()
	if len(ts) == 0 {
		return prev
	}
	// A slow read delays the next tick rather than failing at the period
	// (the ticker drops the ticks it misses).
	ctx, cancel := context.WithTimeout(h.b.ctx, max(h.b.cfg.PositionCheck, positionReadTimeout))
	defer cancel()
	cmds := make([]*redis.XMessageSliceCmd, len(ts))
	_, err := h.b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range ts {
			cmds[i] = p.XRevRangeN(ctx, feed.StreamKey(h.b.cfg.Prefix, t.name), "+", "-", 1)
		}
		return nil
	})
	// Logged when reads start failing and when they work again, not on
	// every tick of an outage (the pub/sub connections report it too).
	switch {
	case err != nil && h.b.ctx.Err() == nil && !h.checkFailing:
		h.checkFailing = true
		h.b.cfg.Logger.Warn("feed: position check read failed; retrying every tick", "err", err, "topics", len(ts))
	case err == nil && h.checkFailing:
		h.checkFailing = false
		h.b.cfg.Logger.Info("feed: position check reads again", "topics", len(ts))
	}
	next := make(map[*topic]feed.ID, len(ts))
	for i, t := range ts {
		if old, ok := prev[t]; ok && !old.IsZero() {
			for _, l := range *t.list.Load() {
				if p, ok := l.(positioned); ok && p.behind(old) {
					h.b.m.catchups.WithLabelValues(triggerPosition).Inc()
				}
			}
		}
		if cmds[i].Err() != nil {
			if old, ok := prev[t]; ok {
				next[t] = old // unknown this time: keep the older reading
			}
			continue
		}
		var pos feed.ID
		if msgs := cmds[i].Val(); len(msgs) > 0 {
			pos, _ = feed.ParseID(msgs[0].ID)
		}
		next[t] = pos
	}
	return next
}

// behind sends a live subscription that has not delivered pos back to
// catching up. One that is catching up already reads the stream itself.
func (s *Subscription) behind(pos feed.ID) bool {
	s.mu.Lock()
	if s.closed || !s.live || !s.lastOK || s.last.Compare(pos) >= 0 {
		s.mu.Unlock()
		return false
	}
	s.live = false
	s.pending = s.pending[:0]
	s.mu.Unlock()
	s.b.wg.Go(func() { s.catchUp("") })
	return true
}

// behind wakes a long-poll waiting for events after an ID older than pos:
// it reads the stream again.
func (w *waiter) behind(pos feed.ID) bool {
	if w.hasAfter && w.after.Compare(pos) >= 0 {
		return false
	}
	w.poke()
	return true
}
