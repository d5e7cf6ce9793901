package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
)

// BenchmarkAppendEvents archives batches of new events of 50 trips (the
// shape of a pipeline batch: a few events per trip, a trip.status payload
// of realistic size) on each backend; events/s is the figure to watch.
func BenchmarkAppendEvents(b *testing.B) {
	data := json.RawMessage(`{"trip":{"id":"t_0123456789","status":"driver_assigned","driver_id":"d_42"},"version":3,"reason":""}`)
	for _, be := range backends {
		for _, size := range []int{1, 100, 500, 2000} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, size), func(b *testing.B) {
				s := mustOpen(b, be.url(b))
				ctx := context.Background()
				batch := make([]archive.Event, size)
				seq := 0
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					for i := range batch {
						seq++
						trip := fmt.Sprintf("t_%05d", seq%50)
						batch[i] = archive.Event{Topic: "trip:" + trip, ID: fmt.Sprintf("%d-%d", 1_790_000_000_000+seq/8, seq%8),
							Type: "trip.status", TripID: trip, Data: data, TS: time.UnixMilli(1_790_000_000_000 + int64(seq))}
					}
					n, err := s.AppendEvents(ctx, batch)
					if err != nil || n != int64(size) {
						b.Fatalf("AppendEvents = %d, %v", n, err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
