package feedredis_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// cutter is a go-redis dialer that can cut the node off from Redis: Cut
// closes every connection it made and refuses new ones until Restore.
type cutter struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return nil, errors.New("cut off")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		c.conns = append(c.conns, conn)
	}
	return conn, err
}

func (c *cutter) Cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

func (c *cutter) Restore() {
	c.mu.Lock()
	c.cut = false
	c.mu.Unlock()
}

// A node cut off from Redis for DownAfter ends its subscriptions with
// ErrUnavailable (their clients go to another node) and refuses new ones
// at once; once Redis is back it subscribes again.
func TestDownAfter(t *testing.T) {
	cut := &cutter{}
	rdb := MustOpenRedis(t, func(o *redis.Options) { o.Dialer = cut.dial; o.MaxRetries = -1 })
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{DownAfter: 300 * time.Millisecond, ProbeInterval: 100 * time.Millisecond})
	ctx := context.Background()
	topic := newTopic(t, rdb)
	s, err := b.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	publishN(t, b, topic, 1)
	recvN(t, s, 1, 5*time.Second)

	cut.Cut()
	start := time.Now()
	select {
	case _, ok := <-s.C():
		for ok {
			_, ok = <-s.C()
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription still open 5s after the node was cut off")
	}
	if !errors.Is(s.Err(), feed.ErrUnavailable) {
		t.Fatalf("Err = %v, want ErrUnavailable", s.Err())
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("ended after %v, before DownAfter", d)
	}
	t0 := time.Now()
	if _, err := b.Subscribe(ctx, topic, ""); !errors.Is(err, feed.ErrUnavailable) {
		t.Fatalf("Subscribe while cut off: %v, want ErrUnavailable", err)
	} else if d := time.Since(t0); d > time.Second {
		t.Fatalf("Subscribe took %v to fail: want at once", d)
	}

	cut.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s2, err := b.Subscribe(ctx, topic, "")
		if err == nil {
			defer s2.Close()
			want := publishN(t, b, topic, 2)
			equalIDs(t, itemIDs(recvN(t, s2, 2, 5*time.Second)), want)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no subscription 10s after Redis came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A topic kept on a down node by a listener that is not a subscription (a
// long-poll waiter, which giveUp leaves alone) still refuses a new
// subscription at once: Subscribe must not wait SubscribeTimeout for a
// confirmation that cannot come. TestDownAfter hit the same path under
// load, when its Subscribe ran before the subscription ended by giveUp had
// left the topic.
func TestDownRefusesHeldTopic(t *testing.T) {
	cut := &cutter{}
	rdb := MustOpenRedis(t, func(o *redis.Options) { o.Dialer = cut.dial; o.MaxRetries = -1 })
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{DownAfter: 300 * time.Millisecond, ProbeInterval: 100 * time.Millisecond})
	topic := newTopic(t, rdb)
	ready, release, err := feedredis.Hold(b, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("held topic not subscribed after 10s")
	}

	cut.Cut()
	other := newTopic(t, rdb)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// ErrClosed: the pending subscription was ended by giveUp; retry.
		_, err := b.Subscribe(context.Background(), other, "")
		if errors.Is(err, feed.ErrUnavailable) {
			break
		}
		if err == nil || time.Now().After(deadline) {
			t.Fatalf("node not down 10s after the cut: Subscribe(other) = %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t0 := time.Now()
	if _, err := b.Subscribe(context.Background(), topic, ""); !errors.Is(err, feed.ErrUnavailable) {
		t.Fatalf("Subscribe on the held topic while cut off: %v, want ErrUnavailable", err)
	} else if d := time.Since(t0); d > time.Second {
		t.Fatalf("Subscribe on the held topic took %v to fail: want at once (SubscribeTimeout is 5s)", d)
	}
}
