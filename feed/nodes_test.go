package feed_test

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

	"github.com/hextrack/hextrack/feed"
	"github.com/redis/go-redis/v9"
)

func TestTwoNodes(t *testing.T) {
	rdb := MustOpenRedis(t)
	a, _ := MustOpenBroker(t, rdb, feed.Config{})
	bNode, _ := MustOpenBroker(t, MustOpenRedis(t), feed.Config{})
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
	a, _ := MustOpenBroker(t, admin, feed.Config{})
	bNode, regB := MustOpenBroker(t, rdbB, feed.Config{ProbeInterval: 100 * time.Millisecond})
	topic := newTopic(t, admin)
	ctx := context.Background()

	subs := make([]*feed.Subscription, 5)
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
	go func() { // client → server: spot SUBSCRIBE
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

func (p *stallProxy) stall() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.pubsubs {
		pc.mu.Lock()
		pc.stalled = true
		pc.mu.Unlock()
	}
	n := len(p.pubsubs)
	p.pubsubs = nil
	return n
}

// A silently stalled subscription (no error, messages just stop) is caught
// by the liveness probe; the subscribers recover every event.
func TestPubSubStalled(t *testing.T) {
	admin := MustOpenRedis(t)
	proxy := startStallProxy(t, admin.Options().Addr)
	rdbB := redis.NewClient(&redis.Options{Addr: proxy.ln.Addr().String()})
	t.Cleanup(func() { _ = rdbB.Close() })
	a, _ := MustOpenBroker(t, admin, feed.Config{})
	bNode, regB := MustOpenBroker(t, rdbB, feed.Config{ProbeInterval: 100 * time.Millisecond})
	topic := newTopic(t, admin)
	ctx := context.Background()
	sub, err := bNode.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ids := publishN(t, a, topic, 5)
	got := itemIDs(recvN(t, sub, 5, 5*time.Second))
	if n := proxy.stall(); n != 1 {
		t.Fatalf("stalled %d pub/sub connections, want 1", n)
	}
	start := time.Now()
	more := publishN(t, a, topic, 5) // lost on the stalled connection
	ids = append(ids, more...)
	got = append(got, itemIDs(recvN(t, sub, 5, 5*time.Second))...)
	equalIDs(t, got, ids)
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("recovered after %v, want within a few probe intervals", el)
	}
	if n := counter(t, regB, "hextrack_feed_resubscribes_total"); n < 1 {
		t.Fatalf("resubscribes = %v", n)
	}
	// And live delivery works again on the new connection.
	last := publishN(t, a, topic, 3)
	equalIDs(t, itemIDs(recvN(t, sub, 3, 5*time.Second)), last)
}
