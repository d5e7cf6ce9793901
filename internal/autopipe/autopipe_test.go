package autopipe

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hextrack/hextrack/internal/redistest"
)

// TestCmds: concurrent reads through one Cmds each get their own reply
// (values, absent fields, errors) although they share pipelines, and a
// read whose request went away is still served (and, leading, serves its
// batch).
func TestCmds(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	ctx := context.Background()
	const keys = 50
	for i := range keys {
		if err := rdb.HSet(ctx, fmt.Sprintf("%sh%d", prefix, i), "a", fmt.Sprint(i), "b", "x").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Set(ctx, prefix+"str", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	b := NewCmds(rdb)
	args := HMGetArgs("a", "missing")
	var wg sync.WaitGroup
	errs := make(chan error, 64*200)
	for g := range 64 {
		wg.Go(func() {
			rctx := ctx
			if g%8 == 0 { // some requests end before their read does
				c, cancel := context.WithCancel(ctx)
				cancel()
				rctx = c
			}
			for i := range 200 {
				k := (g + i) % keys
				var f [2]string
				if g%5 == 0 && i%10 == 0 {
					err := b.HMGet(rctx, args, prefix+"str", f[:])
					if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
						errs <- fmt.Errorf("HMGET of a string: %v", err)
					}
					continue
				}
				if err := b.HMGet(rctx, args, fmt.Sprintf("%sh%d", prefix, k), f[:]); err != nil {
					errs <- err
					continue
				}
				if f[0] != fmt.Sprint(k) || f[1] != "" {
					errs <- fmt.Errorf("h%d: %q", k, f)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if b.piped.Load() == 0 {
		t.Fatal("no read shared a pipeline")
	}
	t.Logf("%d of %d reads in shared pipelines", b.piped.Load(), 64*200)
	if leaders, queued := b.pipe.Stats(); leaders != 0 || queued != 0 {
		t.Fatalf("idle batcher has %d leaders, %d queued", leaders, queued)
	}
}
