package autopipe

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Batcher sends the small reads of concurrent polls (SnapshotTag,
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
type Batcher struct {
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

// New returns a Batcher sending reads to rdb.
func New(rdb redis.UniversalClient) *Batcher { return &Batcher{rdb: rdb} }

// Do runs one command (args as for redis.Client.Do) in the next pipeline
// and returns it with its reply or error. The read is not abandoned when
// ctx ends: a queued read may have to lead the next batch. The pipeline
// runs without the leader's cancellation (one client going away must not
// fail the others' reads); the client's read and write timeouts bound it.
func (b *Batcher) Do(ctx context.Context, args ...any) *redis.Cmd {
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
func (b *Batcher) lead(ctx context.Context, batch []*batchRead) {
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
func (b *Batcher) handOver(batch []*batchRead) {
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

// HMGetArgs returns an HMGET command's arguments with a nil slot for the
// key (index 1): a caller boxes its fields once and copies the template
// per read.
func HMGetArgs(fields ...string) []any {
	args := make([]any, 0, 2+len(fields))
	args = append(args, "hmget", nil)
	for _, f := range fields {
		args = append(args, f)
	}
	return args
}

// HMGet runs an HMGET built from template (HMGetArgs) on key, batched
// with concurrent reads, and puts the values in into, "" for absent
// fields.
func (b *Batcher) HMGet(ctx context.Context, template []any, key string, into []string) error {
	args := make([]any, len(template))
	copy(args, template)
	args[1] = key
	vals, err := b.Do(ctx, args...).Slice()
	if err != nil {
		return err
	}
	if len(vals) != len(into) {
		return fmt.Errorf("HMGET: %d values for %d fields", len(vals), len(into))
	}
	for i, v := range vals {
		into[i], _ = v.(string)
	}
	return nil
}
