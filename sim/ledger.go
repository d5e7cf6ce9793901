package sim

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/sim/eventcheck"
)

// ledger is the trips riders follow, each with a client that may read it:
// a trip is tracked from its request until its rider verified it, and the
// ones still open when a run ends are verified then (their tails may be in
// flight). Safe for concurrent use.
type ledger struct {
	forget func(trip string) // told of every trip untracked

	mu     sync.Mutex
	active map[string]*client.Client
}

// track remembers a trip to verify at the end; untrack forgets it.
func (l *ledger) track(id string, c *client.Client) {
	l.mu.Lock()
	if l.active == nil {
		l.active = map[string]*client.Client{}
	}
	l.active[id] = c
	l.mu.Unlock()
}

func (l *ledger) untrack(id string) {
	l.mu.Lock()
	delete(l.active, id)
	l.mu.Unlock()
	if l.forget != nil {
		l.forget(id)
	}
}

// token is a token that may read a tracked trip ("" when untracked).
func (l *ledger) token(trip string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.active[trip]; c != nil {
		return c.Token()
	}
	return ""
}

// open is the trips still tracked.
func (l *ledger) open() map[string]*client.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.active)
}

// verify untracks a trip, reads its event history and checks the
// deliveries against it.
func (l *ledger) verify(ctx context.Context, check *eventcheck.Checker, id string, c *client.Client) error {
	l.untrack(id)
	ids, err := History(ctx, c, id)
	if err != nil {
		return fmt.Errorf("history of %s: %w", id, err)
	}
	check.Verify("trip:"+id, ids)
	return nil
}
