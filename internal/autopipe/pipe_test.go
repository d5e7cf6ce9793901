package autopipe

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPipeGivesUpQueued: with every pipeline in flight a call queues, and
// gives up with its context while still queued (leaving the queue);
// once the pipeline is back a call is sent at once and gives it back.
func TestPipeGivesUpQueued(t *testing.T) {
	release := make(chan struct{})
	var sent atomic.Int32
	p := New(1, func(_ context.Context, jobs []int) {
		if jobs[0] == 0 {
			<-release // the only pipeline stays in flight
		}
		sent.Add(int32(len(jobs)))
	})
	held := make(chan error)
	go func() { held <- p.Do(context.Background(), 0) }()
	for leaders, _ := p.Stats(); leaders != 1; leaders, _ = p.Stats() {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Do(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v while the only pipeline is in flight, want the context's deadline", err)
	}
	if _, queued := p.Stats(); queued != 0 {
		t.Fatal("the call given up is still queued")
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := p.Do(context.Background(), 2); err != nil {
		t.Fatalf("err %v with a free pipeline", err)
	}
	if leaders, queued := p.Stats(); leaders != 0 || queued != 0 {
		t.Fatalf("the pipeline was not given back: %d leaders, %d queued", leaders, queued)
	}
	if sent.Load() != 2 {
		t.Fatalf("%d calls sent, want 2 (the one given up is not)", sent.Load())
	}
}

// TestPipe: concurrent calls are sent in pipelines of at most max, at most
// maxLeaders at once, each exactly once; a call waits for its own to be
// sent.
func TestPipe(t *testing.T) {
	for _, inflight := range []int{1, 2, 7, 64} {
		t.Run(strconv.Itoa(inflight), func(t *testing.T) {
			type job struct {
				n    int
				sent atomic.Int32
			}
			var cur, most atomic.Int32
			p := New(inflight, func(_ context.Context, jobs []*job) {
				if len(jobs) > max(1, inflight/min(2, inflight)) {
					t.Errorf("a pipeline of %d", len(jobs))
				}
				c := cur.Add(int32(len(jobs)))
				for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
				}
				time.Sleep(200 * time.Microsecond)
				for _, j := range jobs {
					j.sent.Add(1)
				}
				cur.Add(-int32(len(jobs)))
			})
			var wg sync.WaitGroup
			for g := 0; g < 50; g++ {
				wg.Go(func() {
					for i := 0; i < 40; i++ {
						j := &job{n: i}
						if err := p.Do(context.Background(), j); err != nil {
							t.Error(err)
							return
						}
						if j.sent.Load() != 1 {
							t.Errorf("call returned after %d sends", j.sent.Load())
						}
					}
				})
			}
			wg.Wait()
			if m := most.Load(); int(m) > inflight {
				t.Errorf("%d in flight at once, at most %d allowed", m, inflight)
			}
			if leaders, queued := p.Stats(); leaders != 0 || queued != 0 {
				t.Errorf("after the calls: %d leaders, %d queued", leaders, queued)
			}
		})
	}
}
