package eta

import (
	"context"
	"runtime"
	"sync"

	"github.com/hextrack/hextrack/eta/edgespeed"
	"github.com/hextrack/hextrack/eta/mapmatch"
	"github.com/hextrack/hextrack/geo/road"
)

// maxMatchFixes bounds the fixes Learn map-matches (every k-th trip past
// it): matching costs ~50 µs a fix on one core (BenchmarkMatch), so the
// cap keeps it within ~5 s of CPU for an archive of 100k trips. The team's
// Porto sample (~11k training fixes) is far under it.
const maxMatchFixes = 100_000

// bucketHop is a matched hop and the time-of-day bucket it was driven in.
type bucketHop struct {
	hop    mapmatch.Hop
	bucket int
}

// matchTrails map-matches the trails of train (trips of three fixes or
// more; every k-th past maxMatchFixes) to g: each trip's hops, nil for a
// trip not matched. nil without a graph.
func matchTrails(ctx context.Context, train []Trip, g *road.Graph) [][]bucketHop {
	if g == nil {
		return nil
	}
	n := 0
	for _, t := range train {
		if len(t.Fixes) >= 3 {
			n += len(t.Fixes)
		}
	}
	step := max(1, (n+maxMatchFixes-1)/maxMatchFixes)
	m := mapmatch.New(g, mapmatch.Config{})
	out := make([][]bucketHop, len(train))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := 0
			for i, t := range train {
				if len(t.Fixes) < 3 {
					continue
				}
				k++
				if k%step != 0 || (k/step)%workers != w || ctx.Err() != nil {
					continue
				}
				trail := make([]mapmatch.Fix, len(t.Fixes))
				for j, f := range t.Fixes {
					trail[j] = mapmatch.Fix{Point: f.Point, Time: f.Time}
				}
				res := m.Match(trail)
				for _, h := range res.Hops {
					if len(h.Spans) > 0 {
						b := BucketOf(t.Fixes[res.Points[h.From].Index].Time)
						out[i] = append(out[i], bucketHop{h, b})
					}
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// edgeSpeeds learns the edge-speed table of g from hops (nil without any).
func edgeSpeeds(g *road.Graph, hops [][]bucketHop) *edgespeed.Table {
	if g == nil || hops == nil {
		return nil
	}
	l := edgespeed.NewLearner(g, Buckets, 0)
	for _, hs := range hops {
		for _, h := range hs {
			l.Add(h.hop, h.bucket)
		}
	}
	return l.Table()
}
