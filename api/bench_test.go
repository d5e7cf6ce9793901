package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api/tokens"
)

// BenchmarkHTTPIngest posts batches of 50 pings over loopback HTTP (keep-alive,
// parallel clients) to a server on real Redis, and reports pings/s.
func BenchmarkHTTPIngest(b *testing.B) {
	srv, ts := newServerB(b)
	const drivers, batch = 1000, 50
	toks := make([]string, drivers)
	for i := range toks {
		toks[i], _ = srv.Auth().Mint(tokens.Request{Role: tokens.RoleDriver, Sub: fmt.Sprintf("d%d", i), TTL: time.Hour})
	}
	seqs := make([]atomic.Int64, drivers)
	var next atomic.Int64
	t0 := time.Now().Add(-time.Hour)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf bytes.Buffer
		for pb.Next() {
			i := int(next.Add(1)) % drivers
			buf.Reset()
			buf.WriteString(`{"pings":[`)
			for k := 0; k < batch; k++ {
				s := seqs[i].Add(1)
				if k > 0 {
					buf.WriteByte(',')
				}
				fmt.Fprintf(&buf, `{"lat":%.6f,"lng":%.6f,"ts":%d,"seq":%d}`, 41.1+float64(i%100)*0.0005, -8.65+float64(s%1000)*0.00002, t0.Add(time.Duration(s)*time.Second).UnixMilli(), s)
			}
			buf.WriteString(`]}`)
			req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/v1/drivers/d%d/locations", ts.URL, i), bytes.NewReader(buf.Bytes()))
			req.Header.Set("Authorization", "Bearer "+toks[i])
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "pings/s")
}
