package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
)

// loadTests gates the flood and storm tests: they measure latency and open
// thousands of connections, so they run alone (make test-security), not
// inside the parallel, race-instrumented make test.
func loadTests(t *testing.T) {
	t.Helper()
	if os.Getenv("HEXTRACK_LOAD_TESTS") == "" {
		t.Skip("set HEXTRACK_LOAD_TESTS=1 (make test-security)")
	}
}

// TestPingFlood: one driver sending 1,000 pings/s gets 429s, while a
// well-behaved driver's ping-ack latency on the same node stays within 2×
// its quiet value (median, quiet measured before and after the flood).
func TestPingFlood(t *testing.T) {
	loadTests(t)
	e := newSecEnv(t, api.Config{Limits: unlimited}, nil, 1)[0]
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(id, tok string, seq int64) (int, time.Duration) {
		body := pingBody(52.52+float64(seq)*1e-7, 13.405, time.Now(), int(seq))
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/drivers/"+id+"/locations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			t.Error(err)
			return 0, 0
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != 429 {
			t.Logf("%s: %d %s", id, resp.StatusCode, b)
		}
		return resp.StatusCode, time.Since(start)
	}
	good, gtok := "d_good", e.tok(t, "driver", "d_good")
	var gseq int64
	// measure sends one good ping every 50 ms for d and returns the acks'
	// latencies; every ping must be accepted.
	measure := func(d time.Duration) []time.Duration {
		var lat []time.Duration
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			gseq++
			st, l := post(good, gtok, gseq)
			if st != 200 {
				t.Fatalf("well-behaved driver got %d", st)
			}
			lat = append(lat, l)
		}
		return lat
	}
	measure(500 * time.Millisecond) // warm up connections and scripts
	quiet := measure(2 * time.Second)

	// The flood: 1,000 pings/s from one driver for 3 s, 50 senders each
	// pacing one ping every 50 ms.
	bad, btok := "d_flood", e.tok(t, "driver", "d_flood")
	var sent, limited, accepted atomic.Int64
	var seq atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				st, _ := post(bad, btok, seq.Add(1))
				sent.Add(1)
				switch st {
				case 429:
					limited.Add(1)
				case 200:
					accepted.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // past the flooder's burst
	flooded := measure(2500 * time.Millisecond)
	wg.Wait()
	after := measure(2 * time.Second)
	quiet = append(quiet, after...)

	q, f := median(quiet), median(flooded)
	rate := float64(sent.Load()) / 3
	t.Logf("flood: %d pings sent (%.0f/s), %d accepted, %d answered 429", sent.Load(), rate, accepted.Load(), limited.Load())
	t.Logf("well-behaved ping ack: quiet p50 %v p90 %v; during the flood p50 %v p90 %v (%.2fx)",
		q, pct(quiet, 0.9), f, pct(flooded, 0.9), float64(f)/float64(q))
	if rate < 900 {
		t.Fatalf("the flood reached only %.0f pings/s", rate)
	}
	if limited.Load() == 0 || accepted.Load() > 1000+int64(3*10)+100 {
		t.Fatalf("flood not limited: %d accepted, %d limited", accepted.Load(), limited.Load())
	}
	if f > 2*q {
		t.Fatalf("well-behaved latency %v during the flood, more than 2x quiet %v", f, q)
	}
}

func median(d []time.Duration) time.Duration { return pct(d, 0.5) }

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// TestReconnectStorm: 5,000 SSE clients (from 250 loopback addresses)
// connect within one second to one node. The node stays up, answers 503 +
// a jittered Retry-After to what exceeds its admission rate, and every
// client is connected within 30 s by honouring Retry-After.
func TestReconnectStorm(t *testing.T) {
	loadTests(t)
	const clients, addrs = 5000, 250
	e := newSecEnv(t, api.Config{Limits: api.LimitConfig{LimitLoopback: true}}, nil, 1)[0] // default limits, loopback included
	snap, rc := e.newTrip(t)
	url, tok := e.eventsURL(snap.Trip.ID), rc.Token()
	transports := make([]*http.Transport, addrs)
	for i := range transports {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(2+i%250))}
		d := &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
		transports[i] = &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: -1, DisableKeepAlives: true}
	}
	var status sync.Map // code → *atomic.Int64
	count := func(code int) {
		v, _ := status.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()
	connected := make([]time.Duration, clients)
	var retryMax atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Second / clients) // all within 1 s
			hc := &http.Client{Transport: transports[i%addrs]}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				req.Header.Set("Accept", "text/event-stream")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := hc.Do(req)
				if err != nil {
					count(-1)
					time.Sleep(time.Second)
					continue
				}
				count(resp.StatusCode)
				if resp.StatusCode == 200 {
					br := bufio.NewReader(resp.Body)
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							resp.Body.Close()
							count(-2)
							return
						}
						if strings.HasPrefix(line, "event: snapshot") {
							connected[i] = time.Since(start)
							break
						}
					}
					<-ctx.Done() // hold the stream until the test ends
					resp.Body.Close()
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				if err != nil || ra < 1 {
					count(-3)
					ra = 1
				}
				retryMax.Store(max(retryMax.Load(), int64(ra)))
				time.Sleep(time.Duration(ra) * time.Second)
			}
		}()
	}
	// Wait until everyone is connected (or the deadline), checking the node
	// still answers its health check throughout.
	for {
		n := 0
		for _, d := range connected {
			if d > 0 {
				n++
			}
		}
		if r := call(t, "GET", e.ts.URL+"/healthz", "", ""); r.status != 200 {
			t.Fatalf("node unhealthy during the storm: %d", r.status)
		}
		if n == clients || time.Since(start) > 35*time.Second {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	all := slices.Clone(connected)
	slices.Sort(all)
	var lines []string
	status.Range(func(k, v any) bool {
		lines = append(lines, fmt.Sprintf("%v=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(lines)
	missing := 0
	for _, d := range all {
		if d == 0 {
			missing++
		}
	}
	t.Logf("storm: %d clients from %d addresses; responses %s; max Retry-After %ds; open streams %d",
		clients, addrs, strings.Join(lines, " "), retryMax.Load(), e.srv.OpenStreams())
	if missing == 0 {
		t.Logf("connected: p50 %v p90 %v p99 %v last %v", all[clients/2], all[clients*9/10], all[clients*99/100], all[clients-1])
	}
	cancel()
	wg.Wait()
	if missing > 0 {
		t.Fatalf("%d of %d clients never connected", missing, clients)
	}
	if v, ok := status.Load(503); !ok || v.(*atomic.Int64).Load() == 0 {
		t.Fatal("no 503: the storm never exceeded admission")
	}
	if all[clients-1] > 30*time.Second {
		t.Fatalf("last client connected after %v", all[clients-1])
	}
}
