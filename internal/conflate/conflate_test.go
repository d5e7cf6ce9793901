package conflate

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// job is a test job: the newest value wins; flags are ORed; n counts the
// puts merged into it.
type job struct {
	v    int
	flag bool
	n    int
}

func merge(dst *job, src job) {
	if src.v >= dst.v {
		dst.v = src.v
	}
	dst.flag = dst.flag || src.flag
	dst.n += max(src.n, 1)
}

func newQ(limit int, dropped func(string)) *Queue[job] {
	return New(Config[job]{Merge: merge, Limit: limit, Dropped: dropped})
}

// TestLatestWinsInArrivalOrder: puts to a key merge into one job (the
// newest value, flags kept), and keys come out in the order they first
// arrived.
func TestLatestWinsInArrivalOrder(t *testing.T) {
	q := newQ(0, nil)
	q.Put("b", job{v: 1}, false)
	q.Put("a", job{v: 5}, false)
	q.Put("b", job{v: 3, flag: true}, false)
	q.Put("b", job{v: 2}, false) // older: the value stays 3
	q.Put("c", job{v: 7}, false)
	if q.Len() != 3 {
		t.Fatalf("Len %d, want 3 keys", q.Len())
	}
	got := q.Take(context.Background(), nil, 10)
	want := []Item[job]{{"b", job{v: 3, flag: true, n: 3}}, {"a", job{v: 5, n: 1}}, {"c", job{v: 7, n: 1}}}
	if len(got) != len(want) {
		t.Fatalf("took %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("item %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestBusyKeyWaits: work for a key being processed is held until Done,
// then the key is ready again (behind the keys that arrived meanwhile);
// max bounds one take.
func TestBusyKeyWaits(t *testing.T) {
	q := newQ(0, nil)
	ctx := context.Background()
	q.Put("a", job{v: 1}, false)
	if got := q.Take(ctx, nil, 1); len(got) != 1 || got[0].Key != "a" {
		t.Fatalf("took %+v", got)
	}
	q.Put("a", job{v: 2}, false) // a is busy
	q.Put("b", job{v: 1}, false)
	q.Put("c", job{v: 1}, false)
	if got := q.Take(ctx, nil, 1); len(got) != 1 || got[0].Key != "b" {
		t.Fatalf("while a is busy took %+v, want b", got)
	}
	q.Done("a")
	got := q.Take(ctx, nil, 10)
	if len(got) != 2 || got[0].Key != "c" || got[1].Key != "a" || got[1].Job.v != 2 {
		t.Fatalf("after Done(a) took %+v, want c then a=2", got)
	}
}

// TestBounded: a bounded put for a new key is dropped when Limit keys are
// pending (Dropped is told); puts to pending keys and unbounded puts
// still go in.
func TestBounded(t *testing.T) {
	var dropped []string
	q := newQ(2, func(k string) { dropped = append(dropped, k) })
	if !q.Put("a", job{v: 1}, true) || !q.Put("b", job{v: 1}, true) {
		t.Fatal("room for two keys")
	}
	if q.Put("c", job{v: 1}, true) {
		t.Fatal("a third key got in")
	}
	if !q.Put("a", job{v: 2}, true) {
		t.Fatal("a pending key's work was dropped")
	}
	if !q.Put("d", job{v: 1}, false) {
		t.Fatal("an unbounded put was dropped")
	}
	if len(dropped) != 1 || dropped[0] != "c" || q.Len() != 3 {
		t.Fatalf("dropped %v, %d keys pending; want [c], 3", dropped, q.Len())
	}
}

// TestAfter: delayed work merges into one timer per key and arrives once
// the first delay passed; Close stops pending timers.
func TestAfter(t *testing.T) {
	q := newQ(0, nil)
	q.After("a", 30*time.Millisecond, job{v: 1})
	q.After("a", time.Hour, job{v: 4, flag: true}) // joins the first timer
	q.After("a", time.Hour, job{v: 2})
	if q.Len() != 0 {
		t.Fatal("delayed work is pending before its time")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got := q.Take(ctx, nil, 10)
	if len(got) != 1 || got[0].Job.v != 4 || !got[0].Job.flag {
		t.Fatalf("took %+v, want a=4 flagged", got)
	}
	q.After("b", 20*time.Millisecond, job{v: 1})
	q.Close()
	time.Sleep(60 * time.Millisecond)
	if q.Len() != 0 {
		t.Fatal("a timer fired after Close")
	}
	q.Put("c", job{v: 1}, false)
	if q.Len() != 0 {
		t.Fatal("a put was kept after Close")
	}
}

// TestTakeEndsWithContext: Take waits for work, and returns empty once
// its context is done.
func TestTakeEndsWithContext(t *testing.T) {
	q := newQ(0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []Item[job])
	go func() { done <- q.Take(ctx, nil, 1) }()
	select {
	case got := <-done:
		t.Fatalf("Take returned %+v with no work", got)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if got := <-done; len(got) != 0 {
		t.Fatalf("Take after cancel: %+v", got)
	}
}

// TestRunRace: many producers, several workers. A key is never processed
// by two workers at once, each key ends processed with the newest value
// put for it, and Run returns once ctx is done with every worker stopped.
func TestRunRace(t *testing.T) {
	q := newQ(0, nil)
	const keys, puts = 16, 2000
	var (
		mu     sync.Mutex
		active = map[string]bool{}
		last   = map[string]int{}
		bad    atomic.Int64
		items  atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		q.Run(ctx, 4, 8, func(_ context.Context, batch []Item[job]) {
			mu.Lock()
			for _, it := range batch {
				if active[it.Key] {
					bad.Add(1)
				}
				active[it.Key] = true
				last[it.Key] = max(last[it.Key], it.Job.v)
			}
			mu.Unlock()
			time.Sleep(50 * time.Microsecond)
			mu.Lock()
			for _, it := range batch {
				active[it.Key] = false
			}
			mu.Unlock()
			items.Add(int64(len(batch)))
		})
	}()
	var wg sync.WaitGroup
	key := func(i int) string { return string(rune('a' + i%keys)) }
	for range 8 {
		wg.Go(func() {
			for i := 1; i <= puts; i++ {
				q.Put(key(i), job{v: i}, false)
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := 0
		for i := puts - keys + 1; i <= puts; i++ {
			if last[key(i)] == i {
				n++
			}
		}
		mu.Unlock()
		if n == keys && q.Len() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d keys reached their last value", n, keys)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-ran:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if bad.Load() != 0 {
		t.Fatalf("%d times a key was on two workers at once", bad.Load())
	}
	if items.Load() >= 8*puts {
		t.Fatalf("%d items processed for %d puts: nothing was conflated", items.Load(), 8*puts)
	}
	t.Logf("%d puts processed as %d items", 8*puts, items.Load())
}
