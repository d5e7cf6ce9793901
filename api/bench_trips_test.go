package api_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/trip"
)

// subscribeRaw opens n SSE streams of a trip and counts trip.message
// frames; each frame's text carries its publish time (unix ns) so that
// publish→receive latency can be sampled.
func subscribeRaw(b *testing.B, e *tripEnv, id, tok, last string, n int, onMsg func(sub int, sent int64)) (ready *sync.WaitGroup, stop func()) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready = &sync.WaitGroup{}
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}
	hc := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for i := range n {
		ready.Add(1)
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", e.eventsURL(id), nil)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Authorization", "Bearer "+tok)
			if last != "" {
				req.Header.Set("Last-Event-ID", last)
			}
			resp, err := hc.Do(req)
			if err != nil {
				ready.Done()
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReaderSize(resp.Body, 64<<10)
			signalled := last != ""
			if signalled {
				ready.Done()
			}
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if !signalled && strings.HasPrefix(string(line), "event: snapshot") {
					signalled = true
					ready.Done()
				}
				if k := strings.Index(string(line), `"text":"t=`); k >= 0 {
					rest := string(line[k+10:])
					if j := strings.IndexByte(rest, '"'); j > 0 {
						ns, _ := strconv.ParseInt(rest[:j], 10, 64)
						onMsg(i, ns)
					}
				}
			}
		})
	}
	return ready, func() { cancel(); wg.Wait(); tr.CloseIdleConnections() }
}

// BenchmarkSSEFanout1000: events through one node to 1,000 SSE subscribers
// of one trip over loopback (real Redis). Reports published events/s fully
// delivered, deliveries/s and publish→receive latency percentiles.
func BenchmarkSSEFanout1000(b *testing.B) {
	b.Run("saturated", func(b *testing.B) { benchFanout(b, 0) })
	b.Run("paced-50/s", func(b *testing.B) { benchFanout(b, 20*time.Millisecond) })
}

// benchFanout publishes back to back (pace 0) or one event per pace.
func benchFanout(b *testing.B, pace time.Duration) {
	b.ReportAllocs()
	const subs = 1000
	e := newTripEnv(b, api.StreamConfig{})
	snap, rc := e.newTrip(b)
	id := snap.Trip.ID
	var mu sync.Mutex
	var lat []time.Duration
	got := 0
	done := make(chan struct{})
	want := 0
	ready, stop := subscribeRaw(b, e, id, rc.Token(), "", subs, func(sub int, sent int64) {
		d := time.Since(time.Unix(0, sent))
		mu.Lock()
		got++
		if sub%10 == 0 {
			lat = append(lat, d)
		}
		if got == want {
			close(done)
		}
		mu.Unlock()
	})
	defer stop()
	ready.Wait()
	mu.Lock()
	want = b.N * subs
	mu.Unlock()
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := e.trips.Chat().PostMessage(ctx, id, trip.Actor{Role: trip.RoleRider, ID: snap.Trip.RiderID},
			trip.MessageRequest{ClientID: fmt.Sprintf("b%d", i), Text: fmt.Sprintf("t=%d", time.Now().UnixNano())}); err != nil {
			b.Fatal(err)
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		mu.Lock()
		b.Fatalf("delivered %d of %d", got, want)
	}
	el := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(b.N*subs)/el.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkCatchUp1000: a client that missed 1,000 events resumes with
// Last-Event-ID and receives them all (SSE, real Redis).
func BenchmarkCatchUp1000(b *testing.B) {
	b.ReportAllocs()
	e := newTripEnv(b, api.StreamConfig{})
	snap, rc := e.newTrip(b)
	id := snap.Trip.ID
	ctx := context.Background()
	a := trip.Actor{Role: trip.RoleRider, ID: snap.Trip.RiderID}
	for i := range 1000 {
		if _, err := e.trips.Chat().PostMessage(ctx, id, a, trip.MessageRequest{ClientID: fmt.Sprintf("c%d", i), Text: "t=1"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		var mu sync.Mutex
		n := 0
		done := make(chan struct{})
		_, stop := subscribeRaw(b, e, id, rc.Token(), snap.FeedPosition, 1, func(int, int64) {
			mu.Lock()
			n++
			if n == 1000 {
				close(done)
			}
			mu.Unlock()
		})
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatalf("caught up %d of 1000", n)
		}
		stop()
	}
}
