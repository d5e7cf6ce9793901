package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/hextrack/hextrack/api"
)

// discardWriter is a reusable http.ResponseWriter: the benchmark measures
// the API's own cost per request, not a recorder's.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// benchPoll serves req through the whole handler (middleware chain, route,
// handler, real Redis) b.N times and expects a 304 each time.
func benchPoll(b *testing.B, h http.Handler, req *http.Request) {
	b.Helper()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clear(w.h)
		r := *req
		h.ServeHTTP(w, &r)
		if w.status != http.StatusNotModified {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkPoll304 is one If-None-Match poll answered 304, in process (no
// sockets): allocs/op is the API's per-request cost of a poll.
func BenchmarkPoll304(b *testing.B) {
	b.Run("trip", func(b *testing.B) {
		e := newTripEnv(b, api.StreamConfig{})
		snap, rc := e.newTrip(b)
		p, err := rc.GetTrip(context.Background(), snap.Trip.ID, "")
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, "/v1/trips/"+snap.Trip.ID, nil)
		req.Header.Set("Authorization", "Bearer "+rc.Token())
		req.Header.Set("If-None-Match", p.ETag)
		req.RemoteAddr = "127.0.0.1:40000"
		benchPoll(b, e.srv.Handler(), req)
	})
	b.Run("payment", func(b *testing.B) {
		e := newPayEnv(b)
		pay, rt := e.pendingPayment(b)
		req, _ := http.NewRequest(http.MethodGet, "/v1/payments/"+pay.ID, nil)
		req.Header.Set("Authorization", "Bearer "+rt)
		req.Header.Set("If-None-Match", pay.ETag())
		req.RemoteAddr = "127.0.0.1:40000"
		benchPoll(b, e.srv.Handler(), req)
	})
}
