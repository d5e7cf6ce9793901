package feedredis

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed"
)

func newTestQueue(t *testing.T, max int) (*queue, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	q := newQueue(ctx, max, wg.Go)
	t.Cleanup(func() { cancel(); wg.Wait() })
	return q, cancel
}

func item(i int) feed.Item { return feed.Item{Event: feed.Event{ID: strconv.Itoa(i) + "-0"}} }

func itemN(t *testing.T, it feed.Item) int {
	t.Helper()
	n, err := strconv.Atoi(it.Event.ID[:len(it.Event.ID)-2])
	if err != nil {
		t.Fatalf("item %+v", it)
	}
	return n
}

// recvAll reads until C is closed and checks items arrive as 0, 1, 2, ...
func recvAll(t *testing.T, q *queue) int {
	t.Helper()
	n := 0
	timeout := time.After(5 * time.Second)
	for {
		select {
		case it, ok := <-q.out:
			if !ok {
				return n
			}
			if got := itemN(t, it); got != n {
				t.Fatalf("item %d at position %d: order lost", got, n)
			}
			n++
		case <-timeout:
			t.Fatalf("C not closed after %d items", n)
		}
	}
}

// The queue holds exactly max items, in order, however they are split
// between the channel and the overflow; close hands all of them over.
func TestQueueBoundAndOrder(t *testing.T) {
	for _, max := range []int{1, chanCap, chanCap + 1, 256} {
		t.Run(strconv.Itoa(max), func(t *testing.T) {
			q, _ := newTestQueue(t, max)
			for i := range max {
				if !q.offer(item(i)) {
					t.Fatalf("offer %d of %d refused", i, max)
				}
			}
			if q.offer(item(max)) {
				t.Fatalf("offer beyond max %d accepted", max)
			}
			if c := cap(q.out); c > chanCap {
				t.Fatalf("channel capacity %d, want <= %d (the rest is lazy)", c, chanCap)
			}
			q.close()
			if n := recvAll(t, q); n != max {
				t.Fatalf("got %d items after close, want %d", n, max)
			}
			q.mu.Lock()
			defer q.mu.Unlock()
			if q.buf != nil || q.pumping {
				t.Fatalf("overflow not released: len %d, pumping %v", len(q.buf), q.pumping)
			}
		})
	}
}

// A consumer reading concurrently gets every item in order while the
// producer mixes non-blocking offers (live) and waiting puts (catch-up).
func TestQueueConcurrentOrder(t *testing.T) {
	q, _ := newTestQueue(t, 16)
	const total = 5000
	done := make(chan struct{})
	var got int
	go func() { defer close(done); got = recvAll(t, q) }()
	for i := 0; i < total; i++ {
		if i%3 == 0 {
			if err := q.put(item(i), nil, 5*time.Second); err != nil {
				t.Fatalf("put %d: %v", i, err)
			}
			continue
		}
		for !q.offer(item(i)) { // full: the consumer catches up
			time.Sleep(10 * time.Microsecond)
		}
	}
	q.close()
	<-done
	if got != total {
		t.Fatalf("got %d items, want %d", got, total)
	}
}

func TestQueuePut(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
	}{
		{"channel only", chanCap},
		{"with overflow", 3 * chanCap},
	} {
		t.Run(tc.name+"/stall", func(t *testing.T) {
			q, _ := newTestQueue(t, tc.max)
			for i := range tc.max {
				if err := q.put(item(i), nil, time.Second); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if err := q.put(item(tc.max), nil, 50*time.Millisecond); err != errStall {
				t.Fatalf("put on a full queue: %v, want errStall", err)
			}
			if d := time.Since(start); d < 50*time.Millisecond {
				t.Fatalf("stalled after %v, before the timeout", d)
			}
		})
		t.Run(tc.name+"/done", func(t *testing.T) {
			q, _ := newTestQueue(t, tc.max)
			for i := range tc.max {
				_ = q.put(item(i), nil, time.Second)
			}
			done := make(chan struct{})
			time.AfterFunc(20*time.Millisecond, func() { close(done) })
			if err := q.put(item(tc.max), done, 5*time.Second); err != errQueueClosed {
				t.Fatalf("put after done: %v, want errQueueClosed", err)
			}
		})
		t.Run(tc.name+"/waits for room", func(t *testing.T) {
			q, _ := newTestQueue(t, tc.max)
			for i := range tc.max {
				_ = q.put(item(i), nil, time.Second)
			}
			time.AfterFunc(20*time.Millisecond, func() { <-q.out })
			if err := q.put(item(tc.max), nil, 5*time.Second); err != nil {
				t.Fatalf("put after the consumer took one: %v", err)
			}
		})
	}
}

// abort (the consumer is gone) drops the overflow and closes C even though
// nobody reads; so does the end of the broker.
func TestQueueAbort(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(q *queue, cancel context.CancelFunc)
	}{
		{"abort then close", func(q *queue, _ context.CancelFunc) { q.abort(); q.close() }},
		{"close then abort", func(q *queue, _ context.CancelFunc) { q.close(); q.abort() }},
		{"broker ends", func(q *queue, cancel context.CancelFunc) { q.close(); cancel() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, cancel := newTestQueue(t, 64)
			for i := range 64 {
				q.offer(item(i))
			}
			tc.end(q, cancel)
			deadline := time.Now().Add(5 * time.Second)
			for {
				q.mu.Lock()
				closed, pumping := q.outClosed, q.pumping
				q.mu.Unlock()
				if closed && !pumping {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("C not closed: pumping %v", pumping)
				}
				time.Sleep(time.Millisecond)
			}
			n := 0
			for range q.out {
				n++
			}
			if n > chanCap {
				t.Fatalf("%d items readable after abort, want at most the channel's %d", n, chanCap)
			}
		})
	}
}

// An idle queue costs its small channel, not BufferSize items (the default
// 256 × ~120-byte items were ~30 KiB per subscriber).
func TestQueueIdleSize(t *testing.T) {
	var wg sync.WaitGroup
	start, it, ctx := wg.Go, item(1), context.Background()
	const n = 1000
	qs := make([]*queue, n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range qs {
		qs[i] = newQueue(ctx, 256, start)
		qs[i].offer(it)
		<-qs[i].out
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 1024 {
		t.Fatalf("%d bytes allocated per idle queue, want <= 1 KiB", per)
	}
	runtime.KeepAlive(qs)
}
