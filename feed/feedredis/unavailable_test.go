package feedredis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/internal/redistest"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// serverError is a reply error of Redis (go-redis's redis.Error).
type serverError string

func (e serverError) Error() string { return string(e) }
func (serverError) RedisError()     {}

func TestUnavailable(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"redis.Nil", redis.Nil, false},
		{"wrapped redis.Nil", fmt.Errorf("trip: get: %w", redis.Nil), false},
		{"a plain error", errors.New("boom"), false},
		{"WRONGTYPE", serverError("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{"a script's error", serverError("RATELIMIT 120"), false},
		{"LOADING", serverError("LOADING Redis is loading the dataset in memory"), true},
		{"CLUSTERDOWN", fmt.Errorf("x: %w", serverError("CLUSTERDOWN The cluster is down")), true},
		{"READONLY", serverError("READONLY You can't write against a read only replica."), true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"EOF", io.EOF, true},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"canceled", context.Canceled, false},
		{"pool timeout", redis.ErrPoolTimeout, true},
		{"client closed", redis.ErrClosed, true},
		{"feed's own", feed.ErrUnavailable, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := feedredis.Unavailable(c.err); got != c.want {
				t.Fatalf("Unavailable(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

// TestUnavailableHook: with the hook, a command's or a pipeline's error of
// an unreachable Redis is ErrUnavailable (and still its cause), and every
// other outcome is left as it was.
func TestUnavailableHook(t *testing.T) {
	ctx := context.Background()
	t.Run("redis down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now: connection refused
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
		t.Cleanup(func() { _ = rdb.Close() })
		rdb.AddHook(feedredis.UnavailableHook{})

		err = rdb.Get(ctx, "k").Err()
		if !errors.Is(err, feed.ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("GET: %v, want ErrUnavailable wrapping ECONNREFUSED", err)
		}
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Get(ctx, "a")
			p.Incr(ctx, "b")
			return nil
		})
		if !errors.Is(err, feed.ErrUnavailable) {
			t.Fatalf("pipeline: %v, want ErrUnavailable", err)
		}
		for _, c := range cmds {
			if !errors.Is(c.Err(), feed.ErrUnavailable) {
				t.Fatalf("pipelined %s: %v, want ErrUnavailable", c.Name(), c.Err())
			}
		}
	})
	t.Run("redis up", func(t *testing.T) {
		rdb, prefix := redistest.MustOpen(t)
		rdb.AddHook(feedredis.UnavailableHook{})
		if err := rdb.Get(ctx, prefix+"missing").Err(); err != redis.Nil { //nolint:errorlint // callers compare with ==
			t.Fatalf("GET of a missing key: %v, want redis.Nil itself", err)
		}
		if err := rdb.Set(ctx, prefix+"s", "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		err := rdb.LPush(ctx, prefix+"s", "y").Err()
		if err == nil || errors.Is(err, feed.ErrUnavailable) {
			t.Fatalf("WRONGTYPE: %v, want the command's error, not ErrUnavailable", err)
		}
		_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Get(ctx, prefix+"s")
			p.LPush(ctx, prefix+"s", "y")
			return nil
		})
		if err == nil || errors.Is(err, feed.ErrUnavailable) {
			t.Fatalf("pipeline with WRONGTYPE: %v, want the command's error", err)
		}
	})
}
