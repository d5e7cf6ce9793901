package driverredis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/redistest"
)

// TestIngestScriptWithoutStruct: on a Lua without Redis' struct library
// (the embedded miniredis of make run) ingestScript decodes the packed
// numbers by hand and must decide and store exactly what it does on Redis:
// the same batches (both hemispheres, the equator and the meridian, large
// seqs, replays) give the same replies, state and seqs on both.
func TestIngestScriptWithoutStruct(t *testing.T) {
	real, prefix := redistest.MustOpen(t)
	mr := miniredis.RunT(t)
	mini := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = mini.Close() })
	ctx := context.Background()
	cfg := driver.Config{Prefix: prefix, SeqWindow: 16, PingRate: -1}
	sReal, sMini := NewService(real, nil, cfg), NewService(mini, nil, cfg)
	r := rand.New(rand.NewPCG(5, 6))
	now := time.UnixMilli(1795608000000)
	bases := []geo.Point{{Lat: 41.15, Lng: -8.61}, {Lat: -33.87, Lng: 151.21}, {Lat: 0, Lng: 0}, {Lat: 0.00001, Lng: -0.00001}, {Lat: 64.1, Lng: -179.99}}
	for d, base := range bases {
		id := fmt.Sprintf("d%d", d)
		top := int64(1 << 40)
		if d%2 == 0 {
			top = 0
		}
		for b := 0; b < 20; b++ {
			n := 1 + r.IntN(12)
			ps := make([]driver.Ping, n)
			for i := range ps {
				seq := top + 1 + int64(i)
				if r.IntN(5) == 0 && top > 0 {
					seq = top - r.Int64N(min(top, 20)) // a replay or a late one
				}
				ts := now.Add(time.Duration(b*n+i) * time.Second)
				ps[i] = driver.Ping{Pos: geo.Offset(base, r.Float64()*360, r.Float64()*50), TS: ts, Seq: seq, Accuracy: r.Float64() * 30}
			}
			for _, p := range ps {
				top = max(top, p.Seq)
			}
			var replies [2]any
			for k, s := range []*Service{sReal, sMini} {
				c := s.newIngestCall(id, now, n, n)
				for _, p := range ps {
					c.ping(p, geo.CellOf(p.Pos, geo.ResIndex))
				}
				got, err := s.pipes.run(ctx, c)
				if err != nil {
					t.Fatalf("driver %d batch %d (%s): %v", d, b, []string{"redis", "miniredis"}[k], err)
				}
				replies[k] = got
			}
			if !reflect.DeepEqual(replies[0], replies[1]) {
				t.Fatalf("driver %d batch %d: miniredis replied %v, Redis %v", d, b, replies[1], replies[0])
			}
			if g, w := mini.HGetAll(ctx, stateKey(prefix, id)).Val(), real.HGetAll(ctx, stateKey(prefix, id)).Val(); !reflect.DeepEqual(g, w) {
				t.Fatalf("driver %d batch %d: miniredis stored %v, Redis %v", d, b, g, w)
			}
			if g, w := mini.ZRangeWithScores(ctx, seqsKey(prefix, id), 0, -1).Val(), real.ZRangeWithScores(ctx, seqsKey(prefix, id), 0, -1).Val(); !reflect.DeepEqual(g, w) {
				t.Fatalf("driver %d batch %d: miniredis seqs %v, Redis %v", d, b, g, w)
			}
		}
	}
}
