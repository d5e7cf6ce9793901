package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// freePorts asks the kernel for n distinct free TCP ports on 127.0.0.1
// (listen on :0, read the port, close once all are read). A child told to
// listen on one fails at start if someone took it meanwhile; the waits
// notice its exit.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func freePort() (int, error) {
	p, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// portTaken reports whether something accepts connections on addr.
func portTaken(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err == nil {
		c.Close()
		return true
	}
	return false
}

// errDeadline is the cause of a scenario's context when its deadline
// passes (a signal's is context.Canceled).
var errDeadline = errors.New("scenario deadline passed")

// withDeadline gives a scenario its deadline.
func withDeadline(ctx context.Context, name string, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("%w (%s: %s)", errDeadline, name, d))
}

// await runs fn and waits for its result until ctx ends; the error then
// names what it waited for and for how long. fn is left to the caller's
// clean-up (killing the child it reads from ends it).
func await[T any](ctx context.Context, what string, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	t0 := time.Now()
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("%s: still waiting after %s: %w", what, time.Since(t0).Round(time.Second), context.Cause(ctx))
	}
}

// sleepCtx sleeps for d unless ctx ends first (its cause is returned).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// deadline is a scenario's default budget: a fixed part for setup (a fresh
// server, trips assigned through dispatch, 200,000 drivers seeded) plus
// its measurement windows with room to spare. -deadline overrides it.
func (c config) deadline(step string) time.Duration {
	if c.deadlineAll > 0 {
		return c.deadlineAll
	}
	switch step {
	case "poll":
		return 3*time.Minute + 6*c.pollDur
	case "resume", "nats":
		return 3 * time.Minute
	case "nearby":
		return 5 * time.Minute
	case "idle":
		return 8*time.Minute + 4*c.fanDur
	case "ingest":
		return 4*time.Minute + 4*c.ingestDur
	case "zones":
		return 6*time.Minute + 4*c.ingestDur
	case "archive":
		return 8*time.Minute + 4*c.fanDur
	}
	return 10 * time.Minute
}
