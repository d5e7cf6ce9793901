package faults

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/client"
)

// loadRun is what a Load's riders and drivers share: the public API, the
// Checker their deliveries go to, the retry policy with its error counts,
// the riders' posting switch, and the lifetime of their goroutines (ctx
// ends at Load.Close).
type loadRun struct {
	cfg   LoadConfig
	check *Checker
	pub   *client.Client // unauthenticated, for dev tokens

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	post   atomic.Bool  // riders post while set
	busy   atomic.Int64 // posts in flight (retrying included)

	errMu  sync.Mutex
	errors map[int]int // failed requests by status (0: transport error)
}

func (l *loadRun) failed(err error) {
	st := 0
	var ce *client.Error
	if errors.As(err, &ce) {
		st = ce.Status
	}
	l.errMu.Lock()
	l.errors[st]++
	l.errMu.Unlock()
}

// errorCounts is a copy of the failed requests so far by HTTP status.
func (l *loadRun) errorCounts() map[int]int {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	m := make(map[int]int, len(l.errors))
	for k, v := range l.errors {
		m[k] = v
	}
	return m
}

// retry calls f until it succeeds or ctx ends, pausing between attempts.
func (l *loadRun) retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		l.failed(err)
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 && ce.Status != http.StatusConflict && ce.Status != http.StatusTooManyRequests {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (l *loadRun) token(ctx context.Context, role, sub string) (string, error) {
	var tok string
	err := l.retry(ctx, func() error {
		var err error
		tok, err = l.pub.DevToken(ctx, role, sub, 2*time.Hour)
		return err
	})
	return tok, err
}
