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

// BenchmarkFanout: events of 1,000 trips archived at 1,000 events/s for
// 5 s and fanned out to 10 local endpoints (10 receivers) that answer
// 204 at once; reports deliveries/s (over the time from the first event
// to the last delivery), the p50/p99 of event time to delivery, and
// duplicates (the "events out" figure, on PostgreSQL; the archive's own
// pipeline is not in it: events are appended to the archive directly).
// go test -run ^$ -bench Fanout -benchtime 1x
func BenchmarkFanout(b *testing.B) {
	const endpoints, trips, perSecond, seconds = 10, 1000, 1000, 5
	u := pgURL(b)
	s, err := sqlstore.Open(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var (
		mu   sync.Mutex
		lat  []time.Duration
		seen = map[string]bool{}
		dups int
	)
	e := startEnv(b, u, s, webhookriver.Config{Workers: 50, Sweep: 30 * time.Second})
	for i := range endpoints {
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var ev struct {
				ID, Topic string
				TS        time.Time
			}
			_ = json.NewDecoder(r.Body).Decode(&ev)
			mu.Lock()
			if k := fmt.Sprint(i, ev.Topic, ev.ID); seen[k] {
				dups++
			} else {
				seen[k] = true
				lat = append(lat, time.Since(ev.TS))
			}
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}))
		defer recv.Close()
		url := recv.URL + "/hooks"
		if _, err := e.svc.Create(context.Background(), webhook.Input{URL: &url}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for n := range b.N {
		mu.Lock()
		lat, dups = lat[:0], 0
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
		b.ReportMetric(float64(dups), "duplicates")
		mu.Unlock()
	}
}
