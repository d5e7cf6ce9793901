package feedredis

import (
	"context"
	"fmt"
	"time"

	"github.com/hextrack/hextrack/feed"
)

// Wait is Read for long-polling: it returns at once if events after afterID
// exist (or on any Read error), else blocks up to d (or until ctx is done)
// for one to be published, then reads again. An empty result with next ==
// afterID means "nothing yet, poll again". Waiting uses the node's hub (one
// Redis subscription per topic however many clients poll), never a blocking
// Redis command per client.
func (b *Broker) Wait(ctx context.Context, topic, afterID string, limit int, d time.Duration) ([]feed.Event, string, error) {
	if _, _, err := feed.ParseTopic(topic); err != nil {
		return nil, "", err
	}
	if d <= 0 {
		return b.Read(ctx, topic, afterID, limit)
	}
	w := &waiter{wake: make(chan struct{}, 1)}
	if afterID != "" {
		if id, err := feed.ParseID(afterID); err == nil {
			w.after, w.hasAfter = id, true
		}
	}
	ready, err := b.hub.join(topic, w)
	if err != nil {
		return nil, "", err
	}
	defer b.hub.leave(topic, w)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, "", ctx.Err()
	case <-timer.C:
		return nil, "", fmt.Errorf("feed: wait %s: subscription not confirmed within %v", topic, d)
	}
	// Subscribed before reading: anything published after this read wakes us.
	evs, next, err := b.Read(ctx, topic, afterID, limit)
	if err != nil || len(evs) > 0 {
		return evs, next, err
	}
	select {
	case <-w.wake:
	case <-timer.C:
	case <-ctx.Done():
		return nil, afterID, nil
	}
	return b.Read(ctx, topic, afterID, limit)
}

// waiter is a hub listener that only wakes a long-poll.
type waiter struct {
	after    feed.ID
	hasAfter bool
	wake     chan struct{}
}

func (w *waiter) deliver(m *wireMsg) {
	if m.ev.Durable() && (!w.hasAfter || w.after.Less(m.id)) {
		w.poke()
	}
}

func (w *waiter) recover() { w.poke() }

func (w *waiter) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}
