package feedredis_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed/feedredis"
)

func TestTwoNodes(t *testing.T) {
	rdb := MustOpenRedis(t)
	a, _ := MustOpenBroker(t, rdb, feedredis.Config{})
	bNode, _ := MustOpenBroker(t, MustOpenRedis(t), feedredis.Config{})
	topic := newTopic(t, rdb)
	ctx := context.Background()
	sub, err := bNode.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ids := publishN(t, a, topic, 20)
	equalIDs(t, itemIDs(recvN(t, sub, len(ids), 5*time.Second)), ids)
}

// killPubSub kills node's pub/sub connections (CLIENT KILL ID of every
// pubsub-type client named name) and returns how many it killed.
func killPubSub(tb testing.TB, admin *redis.Client, name string) int {
	tb.Helper()
	ctx := context.Background()
	list, err := admin.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(list) {
		var id string
		named := false
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if f == "name="+name {
				named = true
			}
		}
		if named && id != "" {
			if err := admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
				n++
			}
		}
	}
	return n
}

// CLIENT KILL TYPE pubsub on node B's connection: B reconnects, resubscribes
// and its subscribers re-read from their last IDs, ending with every event.
func TestPubSubKilled(t *testing.T) {
	admin := MustOpenRedis(t)
	name := "hx-feed-test-b-" + randHex(4)
	rdbB := MustOpenRedis(t, func(o *redis.Options) { o.ClientName = name })
	a, _ := MustOpenBroker(t, admin, feedredis.Config{})
	bNode, regB := MustOpenBroker(t, rdbB, feedredis.Config{ProbeInterval: 100 * time.Millisecond})
	topic := newTopic(t, admin)
	ctx := context.Background()

	subs := make([]*feedredis.Subscription, 5)
	for i := range subs {
		s, err := bNode.Subscribe(ctx, topic, "")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		subs[i] = s
	}
	const total = 300
	got := make([][]string, len(subs))
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() { got[i] = itemIDs(recvN(t, s, total, 20*time.Second)) })
	}
	var ids []string
	kills := 0
	for i := range total {
		if i == 100 || i == 200 {
			kills += killPubSub(t, admin, name)
		}
		ids = append(ids, publishN(t, a, topic, 1)...)
		time.Sleep(500 * time.Microsecond)
	}
	wg.Wait()
	if kills < 2 {
		t.Fatalf("killed %d pub/sub connections of %s, want 2", kills, name)
	}
	for i := range subs {
		equalIDs(t, got[i], ids)
	}
	if n := counter(t, regB, "hextrack_feed_resubscribes_total"); n < 2 {
		t.Fatalf("resubscribes = %v, want >= 2", n)
	}
}

// stallProxy forwards TCP to Redis; stall() silently stops delivering
// server→client bytes on every connection that has sent a SUBSCRIBE (the
// pub/sub connections), like a hung network path: no error, no EOF.
type stallProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	pubsubs []*proxyConn
}

type proxyConn struct {
	mu      sync.Mutex
	stalled bool
	pubsub  bool
}

func startStallProxy(tb testing.TB, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	tb.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *stallProxy) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	pc := &proxyConn{}
	defer p.forget(pc)
	go func() { // client → server: spot SUBSCRIBE
		// The client closing its end ends the whole proxied connection, so
		// a pub/sub connection the node dropped is forgotten at once.
		defer up.Close()
		r := bufio.NewReader(c)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if bytes.Contains(bytes.ToLower(buf[:n]), []byte("subscribe")) {
					pc.mu.Lock()
					if !pc.pubsub {
						pc.pubsub = true
						p.mu.Lock()
						p.pubsubs = append(p.pubsubs, pc)
						p.mu.Unlock()
					}
					pc.mu.Unlock()
				}
				if _, err := up.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for { // server → client, dropped once stalled
		n, err := up.Read(buf)
		pc.mu.Lock()
		stalled := pc.stalled
		pc.mu.Unlock()
		if n > 0 && !stalled {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// forget drops pc from the live pub/sub connections.
func (p *stallProxy) forget(pc *proxyConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.pubsubs {
		if x == pc {
			p.pubsubs = append(p.pubsubs[:i], p.pubsubs[i+1:]...)
			return
		}
	}
}

// stall stalls the live pub/sub connection if there is exactly one and
// returns how many there are (stalling none unless one).
func (p *stallProxy) stall() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.pubsubs)
	if n == 1 {
		pc := p.pubsubs[0]
		pc.mu.Lock()
		pc.stalled = true
		pc.mu.Unlock()
		p.pubsubs = nil
	}
	return n
}

// A silently stalled subscription (no error, messages just stop) is caught
// by the liveness probe; the subscribers recover every event. The position
// check is off on node B, so the lost events can only come back through the
// probe's reconnect.
func TestPubSubStalled(t *testing.T) {
	admin := MustOpenRedis(t)
	proxy := startStallProxy(t, admin.Options().Addr)
	rdbB := redis.NewClient(&redis.Options{Addr: proxy.ln.Addr().String()})
	t.Cleanup(func() { _ = rdbB.Close() })
	a, _ := MustOpenBroker(t, admin, feedredis.Config{})
	bNode, regB := MustOpenBroker(t, rdbB, feedredis.Config{ProbeInterval: 100 * time.Millisecond, PositionCheck: -1})
	topic := newTopic(t, admin)
	ctx := context.Background()
	sub, err := bNode.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ids := publishN(t, a, topic, 5)
	got := itemIDs(recvN(t, sub, 5, 5*time.Second))
	// Under load a probe can be late and B reconnect on its own; then the
	// old connection is briefly still open. Stall once B has exactly one.
	deadline := time.Now().Add(10 * time.Second)
	var before float64
	for {
		before = counter(t, regB, "hextrack_feed_resubscribes_total")
		n := proxy.stall()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B has %d pub/sub connections 10s on, want 1", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	more := publishN(t, a, topic, 5) // lost on the stalled connection
	ids = append(ids, more...)
	got = append(got, itemIDs(recvN(t, sub, 5, 5*time.Second))...)
	equalIDs(t, got, ids)
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("recovered after %v, want within a few probe intervals", el)
	}
	if n := counter(t, regB, "hextrack_feed_resubscribes_total"); n <= before {
		t.Fatalf("resubscribes = %v after the stall, %v before: the probe did not reconnect", n, before)
	}
	// And live delivery works again on the new connection.
	last := publishN(t, a, topic, 3)
	equalIDs(t, itemIDs(recvN(t, sub, 3, 5*time.Second)), last)
}
