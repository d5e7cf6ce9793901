package feedredis_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// BenchmarkFanout1000 pushes b.N durable events of one topic through one
// broker to 1,000 local subscribers (real Redis, loopback) and reports
// events/s, deliveries/s and the publish→receive latency (envelope ts to
// the subscriber's receive) at p50/p99. "saturated": two publishers as fast
// as they can (throughput; latency is then queueing). "paced": one event
// every 2 ms (500/s, under capacity: the latency a rider sees).
func BenchmarkFanout1000(b *testing.B) {
	b.Run("saturated", func(b *testing.B) { benchFanout(b, 2, 0) })
	b.Run("paced", func(b *testing.B) { benchFanout(b, 1, 2*time.Millisecond) })
}

func benchFanout(b *testing.B, publishers int, every time.Duration) {
	rdb := MustOpenRedis(b)
	br, reg := MustOpenBroker(b, rdb, feedredis.Config{BufferSize: 8192, MaxLen: 100_000})
	topic := newTopic(b, rdb)
	ctx := context.Background()
	const subscribers = 1000
	subs := make([]*feedredis.Subscription, subscribers)
	for i := range subs {
		s, err := br.Subscribe(ctx, topic, "")
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		subs[i] = s
	}
	data := []byte(`{"status":"driver_assigned","driver_id":"d_42","version":3}`)
	// Warm up: every subscriber has caught up and is live.
	publishN(b, br, topic, 1)
	for _, s := range subs {
		<-s.C()
	}
	recov := counter(b, reg, "hextrack_feed_recoveries_total")
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	lat := make([][]time.Duration, subscribers)
	var failed atomic.Int64
	for i, s := range subs {
		wg.Go(func() {
			sample := i%10 == 0 // latency from 100 of them keeps memory small
			for n := 0; n < b.N; n++ {
				it, ok := <-s.C()
				if !ok {
					failed.Add(1)
					return
				}
				if sample {
					lat[i] = append(lat[i], time.Since(it.Event.TS))
				}
			}
		})
	}
	var next atomic.Int64
	var pw sync.WaitGroup
	for range publishers {
		pw.Go(func() {
			tick := time.Now()
			for next.Add(1) <= int64(b.N) {
				if _, err := br.Publish(ctx, feed.Publication{Topic: topic, Type: "trip.status", Data: data}); err != nil {
					b.Error(err)
					return
				}
				if every > 0 {
					tick = tick.Add(every)
					time.Sleep(time.Until(tick))
				}
			}
		})
	}
	pw.Wait()
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d subscribers closed early (drops %v)", n, counter(b, reg, "hextrack_feed_slow_consumer_drops_total"))
	}
	b.ReportMetric(counter(b, reg, "hextrack_feed_recoveries_total")-recov, "recoveries")
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)*subscribers/el.Seconds(), "deliveries/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99_ms")
	}
}

// BenchmarkCatchUp1000 measures how long a client that missed 1,000 events
// takes to get them all after resuming (one op = one resume).
func BenchmarkCatchUp1000(b *testing.B) {
	rdb := MustOpenRedis(b)
	br, _ := MustOpenBroker(b, rdb, feedredis.Config{MaxLen: 100_000})
	topic := newTopic(b, rdb)
	ctx := context.Background()
	ids := publishN(b, br, topic, 1001)
	from, missed := ids[0], ids[1:]
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s, err := br.Subscribe(ctx, topic, from)
		if err != nil {
			b.Fatal(err)
		}
		for n := range missed {
			it, ok := <-s.C()
			if !ok || it.Event.ID != missed[n] {
				b.Fatalf("item %d: %+v (open %v, err %v)", n, it, ok, s.Err())
			}
		}
		s.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/catchup")
}

// BenchmarkPublish: one durable publish (the Lua script) round trip.
func BenchmarkPublish(b *testing.B) {
	rdb := MustOpenRedis(b)
	br, _ := MustOpenBroker(b, rdb, feedredis.Config{MaxLen: 1000})
	topic := newTopic(b, rdb)
	ctx := context.Background()
	data := []byte(`{"eta_s":420}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Publish(ctx, feed.Publication{Topic: topic, Type: "trip.eta", Data: data}); err != nil {
			b.Fatal(err)
		}
	}
}
