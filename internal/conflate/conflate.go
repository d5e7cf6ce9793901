// Package conflate is a keyed, conflating work queue: at most one pending
// job per key, later work merged into it (latest wins, by the caller's
// Merge), one worker per key at a time, keys served in arrival order, and
// delayed work (one timer per key). Producers never block: Put only takes a
// mutex, and a bounded queue drops work for new keys when full.
//
// The trip location tracker and live ETAs use it: a driver's moves arrive
// far faster than a trip's work can be done, and only the newest matters.
//
// It imports only the standard library.
package conflate

import (
	"context"
	"sync"
	"time"
)

// Config configures a Queue.
type Config[J any] struct {
	// Merge folds src into dst, the pending job of the same key (a new key
	// starts from the zero J). It runs under the queue's lock: keep it
	// short, and never call the queue from it.
	Merge func(dst *J, src J)
	// Limit bounds the keys with a pending job for bounded Puts. Zero: no
	// bound.
	Limit int
	// Dropped, if set, is called (without the lock) for each job a bounded
	// Put drops, delayed work included.
	Dropped func(key string)
}

// Item is one key's job taken for processing.
type Item[J any] struct {
	Key string
	Job J
}

// Queue is a keyed conflating work queue. The zero value is not usable;
// call New.
type Queue[J any] struct {
	cfg Config[J]

	mu      sync.Mutex
	jobs    map[string]*J
	ready   []string        // keys with a job, in arrival order
	busy    map[string]bool // keys being processed
	delayed map[string]*J   // work waiting for its timer
	timers  map[string]*time.Timer
	wake    chan struct{}
	closed  bool
}

// New returns an empty queue.
func New[J any](cfg Config[J]) *Queue[J] {
	return &Queue[J]{cfg: cfg, jobs: map[string]*J{}, busy: map[string]bool{}, delayed: map[string]*J{},
		timers: map[string]*time.Timer{}, wake: make(chan struct{}, 1)}
}

// Put merges j into key's pending job. bounded: when the queue holds
// Config.Limit keys and key is not among them, j is dropped and Put
// returns false. After Close, Put drops everything (and returns true:
// nothing was refused for lack of room).
func (q *Queue[J]) Put(key string, j J, bounded bool) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true
	}
	p, ok := q.jobs[key]
	if !ok {
		if bounded && q.cfg.Limit > 0 && len(q.jobs) >= q.cfg.Limit {
			q.mu.Unlock()
			if q.cfg.Dropped != nil {
				q.cfg.Dropped(key)
			}
			return false
		}
		p = new(J)
		q.jobs[key] = p
		if !q.busy[key] {
			q.ready = append(q.ready, key)
		}
	}
	q.cfg.Merge(p, j)
	q.mu.Unlock()
	q.poke()
	return true
}

// After merges j into key's delayed work, Put (bounded) once d has passed.
// A key has one timer: work delayed again before it fires joins the
// pending delayed work (merged) and keeps the first timer.
func (q *Queue[J]) After(key string, d time.Duration, j J) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	p := q.delayed[key]
	if p == nil {
		p = new(J)
		q.delayed[key] = p
	}
	q.cfg.Merge(p, j)
	if q.timers[key] != nil {
		return
	}
	q.timers[key] = time.AfterFunc(d, func() {
		q.mu.Lock()
		w := q.delayed[key]
		delete(q.delayed, key)
		delete(q.timers, key)
		q.mu.Unlock()
		if w != nil {
			q.Put(key, *w, true)
		}
	})
}

func (q *Queue[J]) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take moves up to max ready keys' jobs into buf and marks them busy.
func (q *Queue[J]) take(buf []Item[J], max int) []Item[J] {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) > 0 && len(buf) < max {
		key := q.ready[0]
		q.ready = q.ready[1:]
		p, ok := q.jobs[key]
		if !ok {
			continue
		}
		delete(q.jobs, key)
		q.busy[key] = true
		buf = append(buf, Item[J]{key, *p})
	}
	if len(q.ready) > 0 {
		q.poke() // let another worker take the next keys
	}
	return buf
}

// Take waits for work and returns up to max keys' jobs (appended to buf),
// every job ready now: work that piled up while the workers were busy is
// taken together; a lone job is returned at once. Each key taken is busy
// until Done. Take returns buf empty when ctx is done.
func (q *Queue[J]) Take(ctx context.Context, buf []Item[J], max int) []Item[J] {
	for {
		if out := q.take(buf, max); len(out) > 0 {
			return out
		}
		select {
		case <-ctx.Done():
			return buf
		case <-q.wake:
		}
	}
}

// Done ends the processing of key: if work for it arrived meanwhile, the
// key is ready again (at the back).
func (q *Queue[J]) Done(key string) {
	q.mu.Lock()
	delete(q.busy, key)
	_, again := q.jobs[key]
	if again {
		q.ready = append(q.ready, key)
	}
	q.mu.Unlock()
	if again {
		q.poke()
	}
}

// Len is the number of keys with a pending job.
func (q *Queue[J]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.jobs)
}

// Close stops the timers and drops further work; pending jobs stay (Take
// still returns them).
func (q *Queue[J]) Close() {
	q.mu.Lock()
	q.closed = true
	for k, t := range q.timers {
		t.Stop()
		delete(q.timers, k)
	}
	clear(q.delayed)
	q.mu.Unlock()
}

// Run runs workers goroutines until ctx is done: each takes up to batch
// keys' jobs, calls handle with them and marks them done. On return the
// queue is closed and every worker has returned (a handle in flight is
// waited for; it gets ctx, so it can give up).
func (q *Queue[J]) Run(ctx context.Context, workers, batch int, handle func(ctx context.Context, items []Item[J])) {
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(func() {
			var buf []Item[J]
			for {
				buf = q.Take(ctx, buf[:0], max(1, batch))
				if len(buf) == 0 {
					return
				}
				handle(ctx, buf)
				for i := range buf {
					q.Done(buf[i].Key)
					buf[i] = Item[J]{}
				}
			}
		})
	}
	<-ctx.Done()
	q.Close()
	wg.Wait()
}
