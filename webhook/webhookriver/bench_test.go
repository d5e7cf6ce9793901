package webhookriver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/webhook"
	"github.com/hextrack/hextrack/webhook/webhookriver"
)

// BenchmarkFanout: events of 100 trips archived at a steady rate and
// fanned out to 10 local endpoints that answer 204 at once; reports
// deliveries/s and the p50/p99 of event time to delivery (the "events
// out" figure, on PostgreSQL). go test -run ^$ -bench Fanout -benchtime 1x
func BenchmarkFanout(b *testing.B) {
	const endpoints, trips, perSecond, seconds = 10, 100, 200, 5
	u := pgURL(b)
	s, err := sqlstore.Open(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var (
		mu  sync.Mutex
		lat []time.Duration
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ TS time.Time }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		lat = append(lat, time.Since(ev.TS))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	e := startEnv(b, u, s, webhookriver.Config{Workers: 50, Sweep: 30 * time.Second})
	for range endpoints {
		url := recv.URL + "/hooks"
		if _, err := e.svc.Create(context.Background(), webhook.Input{URL: &url}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for n := range b.N {
		mu.Lock()
		lat = lat[:0]
		mu.Unlock()
		start := time.Now()
		seq := 0
		for sec := range seconds {
			for tick := range 10 {
				var evs []archive.Event
				for range perSecond / 10 {
					seq++
					trip := fmt.Sprintf("t_%d_%d", n, seq%trips)
					evs = append(evs, archive.Event{Topic: "trip:" + trip, TripID: trip, Type: "trip.status",
						ID: fmt.Sprintf("%d-%d", 1_900_000_000_000+n*1_000_000+seq, 0), TS: time.Now(), Data: json.RawMessage(`{}`)})
				}
				if _, err := s.AppendEvents(context.Background(), evs); err != nil {
					b.Fatal(err)
				}
				time.Sleep(time.Until(start.Add(time.Duration(sec)*time.Second + time.Duration(tick+1)*100*time.Millisecond)))
			}
		}
		want := seq * endpoints
		deadline := time.Now().Add(5 * time.Minute)
		for {
			mu.Lock()
			got := len(lat)
			mu.Unlock()
			if got >= want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d deliveries after 5 min", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(start)
		mu.Lock()
		slices.Sort(lat)
		b.ReportMetric(float64(want)/took.Seconds(), "deliveries/s")
		b.ReportMetric(lat[len(lat)/2].Seconds(), "p50_s")
		b.ReportMetric(lat[len(lat)*99/100].Seconds(), "p99_s")
		mu.Unlock()
	}
}
