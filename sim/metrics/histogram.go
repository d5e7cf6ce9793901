package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Histogram records latencies. It keeps every sample up to a bound and then
// a uniform reservoir of that size, so percentiles stay honest on long runs
// while memory stays fixed; count and max are always exact. Safe for
// concurrent use.
type Histogram struct {
	mu      sync.Mutex
	samples []float64 // milliseconds
	count   int64
	max     float64
	rng     *rand.Rand
}

// histCap bounds the reservoir: 1M float64s is 8 MB.
const histCap = 1 << 20

// Observe records one latency.
func (h *Histogram) Observe(d time.Duration) {
	h.ObserveValue(float64(d) / float64(time.Millisecond))
}

// ObserveValue records a value in the histogram's own unit.
func (h *Histogram) ObserveValue(ms float64) {
	if ms < 0 {
		ms = 0
	}
	h.mu.Lock()
	h.count++
	h.max = math.Max(h.max, ms)
	if len(h.samples) < histCap {
		h.samples = append(h.samples, ms)
	} else {
		if h.rng == nil {
			h.rng = rand.New(rand.NewPCG(1, 2))
		}
		if j := h.rng.Int64N(h.count); j < histCap {
			h.samples[j] = ms
		}
	}
	h.mu.Unlock()
}

// Latency is a percentile summary in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Summary computes the percentiles of what was observed so far.
func (h *Histogram) Summary() Latency {
	h.mu.Lock()
	s := slices.Clone(h.samples)
	l := Latency{Count: h.count, Max: round2(h.max)}
	h.mu.Unlock()
	if len(s) == 0 {
		return l
	}
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return round2(s[max(0, min(i, len(s)-1))])
	}
	l.P50, l.P90, l.P99 = q(0.50), q(0.90), q(0.99)
	return l
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
