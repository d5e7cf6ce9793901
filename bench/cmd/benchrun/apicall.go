package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"time"

	"github.com/hextrack/hextrack/geo"
)

var setupClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 512}}

// call does one JSON request for setup (not on a measured path).
func call(ctx context.Context, method, url, token string, body, out any, hdr ...string) (int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		bb, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(bb)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := setupClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode >= 300 {
		return r.StatusCode, r.Header, fmt.Errorf("%s %s: %d %s", method, url, r.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return r.StatusCode, r.Header, fmt.Errorf("%s %s: %w", method, url, err)
		}
	}
	return r.StatusCode, r.Header, nil
}

type place struct {
	Lat     float64 `json:"lat"`
	Lng     float64 `json:"lng"`
	Address string  `json:"address,omitempty"`
}

type snapshot struct {
	Trip struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"trip"`
	Version      int64  `json:"version"`
	FeedPosition string `json:"feed_position"`
}

// portoBox is the Porto area (the same box as driver's benchmarks).
var portoBox = struct{ s, w, n, e float64 }{41.069, -8.677, 41.163, -8.486}

// cityDense places n points in Porto: 70% around 12 hotspots (Gaussian, σ
// 400 m), the rest uniform over the box (driver/bench_test.go's shape).
func cityDense(n int, seed uint64) []geo.Point {
	r := rand.New(rand.NewPCG(seed, 99))
	hot := make([]geo.Point, 12)
	for i := range hot {
		hot[i] = geo.Point{Lat: portoBox.s + r.Float64()*(portoBox.n-portoBox.s), Lng: portoBox.w + r.Float64()*(portoBox.e-portoBox.w)}
	}
	out := make([]geo.Point, n)
	for i := range out {
		if r.Float64() < 0.7 {
			h := hot[r.IntN(len(hot))]
			out[i] = geo.Offset(h, r.Float64()*360, math.Abs(r.NormFloat64())*400)
		} else {
			out[i] = geo.Point{Lat: portoBox.s + r.Float64()*(portoBox.n-portoBox.s), Lng: portoBox.w + r.Float64()*(portoBox.e-portoBox.w)}
		}
	}
	return out
}

// lat is a set of latency samples.
type lat []time.Duration

func (l lat) sorted() lat {
	c := append(lat(nil), l...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c
}

// q is the p-quantile (0..1) of sorted samples.
func (l lat) q(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(l)))) - 1
	return l[max(0, min(i, len(l)-1))]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
