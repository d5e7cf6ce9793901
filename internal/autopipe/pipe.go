package autopipe

import (
	"context"
	"slices"
	"sync"
)

// Pipe groups the Redis work of concurrent callers into pipelines. A call
// that finds fewer than maxLeaders pipelines in flight sends its own work
// at once; any other call queues, and the pipeline in flight that finishes
// next hands the queue (up to max items) to the first queued call, which
// sends it as one pipeline (leader/follower: no goroutine of its own).
// Under load, work from thousands of callers then costs the node and Redis
// one write and one read per pipeline instead of per call, and at most
// maxLeaders × max items are in flight: a flood waits here, not in the
// Redis connection pool, where it would delay every other command of the
// node. With no contention a call is sent alone, at once.
type Pipe[T any] struct {
	// send does the Redis work of items (one pipeline) and leaves each
	// item's outcome in the item. Its context carries no cancellation: one
	// caller going away must not fail the others' work (the Redis client's
	// timeouts bound it).
	send       func(ctx context.Context, items []T)
	maxLeaders int // pipelines in flight at most
	max        int // items per pipeline at most

	mu      sync.Mutex
	leaders int            // pipelines in flight (≤ maxLeaders)
	queue   []*pipeItem[T] // calls waiting for the next pipeline
}

// New returns a pipe with at most inflight items in flight, in two
// pipelines (one keeps batches deep while Redis answers the other), sent
// by send.
func New[T any](inflight int, send func(context.Context, []T)) *Pipe[T] {
	leaders := min(2, max(1, inflight))
	return &Pipe[T]{send: send, maxLeaders: leaders, max: max(1, inflight/leaders)}
}

// pipeItem is one queued call. done is signalled once the item was sent,
// or (batch set) when it leads the next pipeline.
type pipeItem[T any] struct {
	v     T
	done  chan struct{}
	batch []*pipeItem[T]
}

// Do has v sent in the next pipeline and returns once it was; v holds the
// outcome then. It returns ctx's error without sending v only while v is
// still queued: once taken into a pipeline it is sent.
func (p *Pipe[T]) Do(ctx context.Context, v T) error {
	it := &pipeItem[T]{v: v}
	p.mu.Lock()
	if p.leaders < p.maxLeaders {
		p.leaders++
		p.mu.Unlock()
		it.batch = []*pipeItem[T]{it}
	} else {
		it.done = make(chan struct{}, 1)
		p.queue = append(p.queue, it)
		p.mu.Unlock()
		select {
		case <-it.done:
		case <-ctx.Done():
			p.mu.Lock()
			if i := slices.Index(p.queue, it); i >= 0 {
				p.queue = slices.Delete(p.queue, i, i+1)
				p.mu.Unlock()
				return ctx.Err()
			}
			p.mu.Unlock()
			<-it.done // taken: it is being sent, or leads
		}
		if it.batch == nil {
			return nil
		}
	}
	p.lead(ctx, it.batch)
	return nil
}

// lead sends batch (led by batch[0]) and hands over, whatever happens to
// the pipeline (no queued call is left waiting).
func (p *Pipe[T]) lead(ctx context.Context, batch []*pipeItem[T]) {
	defer p.handOver(batch)
	vs := make([]T, len(batch))
	for i, it := range batch {
		vs[i] = it.v
	}
	p.send(context.WithoutCancel(ctx), vs)
}

// handOver passes the queue on to its first call as the next batch (or
// ends this pipeline's lead) and wakes the other calls of batch.
func (p *Pipe[T]) handOver(batch []*pipeItem[T]) {
	p.mu.Lock()
	var next []*pipeItem[T]
	if n := len(p.queue); n > 0 {
		n = min(n, p.max)
		next = p.queue[:n:n]
		p.queue = p.queue[n:]
		if len(p.queue) == 0 {
			p.queue = nil
		}
	} else {
		p.leaders--
	}
	p.mu.Unlock()
	for _, it := range batch[1:] {
		it.done <- struct{}{}
	}
	if next != nil {
		next[0].batch = next
		next[0].done <- struct{}{}
	}
}

// Stats returns the pipelines in flight and the calls queued.
func (p *Pipe[T]) Stats() (leaders, queued int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leaders, len(p.queue)
}
