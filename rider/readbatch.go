package rider

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// readBatcher sends the small reads of concurrent polls (SnapshotTag,
// Payments.Tag) to Redis as pipelines: a read that finds maxLeaders
// pipelines in flight queues, and the next leader sends everything queued
// in one round trip. Under many concurrent pollers a poll then costs a
// fraction of a round trip's syscalls on both sides instead of a whole
// one; a lone poll is sent at once (no waiting to fill a batch). Every read
// is sent after its request arrived: a batch is never a cache.
//
// There is no goroutine of its own: the first read of a batch leads it
// (sends the pipeline, then hands the queue to its first waiter and wakes
// the others), so nothing needs starting or stopping.
type readBatcher struct {
	rdb redis.UniversalClient

	mu      sync.Mutex
	leaders int          // pipelines in flight (≤ maxLeaders)
	queue   []*batchRead // reads waiting for the next pipeline
	// piped counts the reads sent in pipelines of more than one.
	piped atomic.Int64
}

// maxLeaders bounds the pipelines in flight: one keeps batches deep while
// Redis answers; a second keeps a slow batch from holding up the rest.
const maxLeaders = 2

// maxBatch bounds one pipeline (a larger queue is split between leaders in
// turn).
const maxBatch = 128

// batchRead is one queued read. done is signalled once the read's reply
// is in cmd, or (batch set) when it leads the next pipeline.
type batchRead struct {
	cmd   *redis.Cmd
	done  chan struct{}
	batch []*batchRead
}

// do runs one command (args as for redis.Client.Do) in the next pipeline
// and returns it with its reply or error. The read is not abandoned when
// ctx ends: a queued read may have to lead the next batch. The pipeline
// runs without the leader's cancellation (one client going away must not
// fail the others' reads); the client's read and write timeouts bound it.
func (b *readBatcher) do(ctx context.Context, args ...any) *redis.Cmd {
	r := &batchRead{cmd: redis.NewCmd(ctx, args...)}
	b.mu.Lock()
	if b.leaders < maxLeaders {
		b.leaders++
		b.mu.Unlock()
		r.batch = []*batchRead{r}
	} else {
		r.done = make(chan struct{}, 1)
		b.queue = append(b.queue, r)
		b.mu.Unlock()
		<-r.done
		if r.batch == nil {
			return r.cmd
		}
	}
	b.lead(ctx, r.batch)
	return r.cmd
}

// lead sends batch (led by batch[0]) as one pipeline, then hands over
// (deferred: whatever happens to the pipeline, no queued read is left
// waiting).
func (b *readBatcher) lead(ctx context.Context, batch []*batchRead) {
	defer b.handOver(batch)
	ctx = context.WithoutCancel(ctx)
	if len(batch) == 1 {
		_ = b.rdb.Process(ctx, batch[0].cmd)
	} else {
		b.piped.Add(int64(len(batch)))
		p := b.rdb.Pipeline()
		for _, r := range batch {
			_ = p.Process(ctx, r.cmd)
		}
		_, _ = p.Exec(ctx) // each command carries its own error
	}
}

// handOver passes the queue on to its first read as the next batch (or
// ends this pipeline's lead) and wakes the other reads of batch.
func (b *readBatcher) handOver(batch []*batchRead) {
	b.mu.Lock()
	var next []*batchRead
	if n := len(b.queue); n > 0 {
		n = min(n, maxBatch)
		next = b.queue[:n:n]
		b.queue = b.queue[n:]
		if len(b.queue) == 0 {
			b.queue = nil
		}
	} else {
		b.leaders--
	}
	b.mu.Unlock()
	if next != nil {
		next[0].batch = next
		next[0].done <- struct{}{}
	}
	for _, r := range batch[1:] {
		r.done <- struct{}{}
	}
}
