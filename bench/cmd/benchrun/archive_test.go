package main

import (
	"bufio"
	"math"
	"strings"
	"testing"
)

const lagMetrics = `# HELP hextrack_archive_lag_seconds x
# TYPE hextrack_archive_lag_seconds histogram
hextrack_archive_lag_seconds_bucket{le="0.5"} 50
hextrack_archive_lag_seconds_bucket{le="1"} 90
hextrack_archive_lag_seconds_bucket{le="2"} 99
hextrack_archive_lag_seconds_bucket{le="5"} 100
hextrack_archive_lag_seconds_bucket{le="+Inf"} 100
hextrack_archive_lag_seconds_sum 60
hextrack_archive_lag_seconds_count 100
hextrack_archive_events_total 100
`

func TestHistogram(t *testing.T) {
	h, err := parseHistogram(bufio.NewScanner(strings.NewReader(lagMetrics)), "hextrack_archive_lag_seconds")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"p50 at a bound", h.quantile(0.5), 0.5},
		{"p95 interpolated in (1, 2]", h.quantile(0.95), 1 + 5.0/9},
		{"p99 at the 2 s bound", h.quantile(0.99), 2},
		{"p100 in (2, 5]", h.quantile(1), 5},
		{"share within 2 s", h.fractionLE(2), 0.99},
		{"share within 1.5 s: the lower bound's", h.fractionLE(1.5), 0.9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if math.Abs(tc.got-tc.want) > 1e-9 {
				t.Fatalf("got %v, want %v", tc.got, tc.want)
			}
		})
	}

	before, _ := parseHistogram(bufio.NewScanner(strings.NewReader(strings.NewReplacer(
		`"0.5"} 50`, `"0.5"} 10`, `"1"} 90`, `"1"} 10`, `"2"} 99`, `"2"} 10`, `"5"} 100`, `"5"} 10`,
		`"+Inf"} 100`, `"+Inf"} 10`, "_count 100", "_count 10").Replace(lagMetrics))), "hextrack_archive_lag_seconds")
	d := h.minus(before)
	if d.count != 90 || d.cum[0] != 40 || d.cum[len(d.cum)-1] != 90 {
		t.Fatalf("minus: count %v cum %v", d.count, d.cum)
	}
	if !math.IsNaN((histogram{}).quantile(0.99)) {
		t.Fatal("quantile of an empty histogram is not NaN")
	}
	if _, err := parseHistogram(bufio.NewScanner(strings.NewReader("other 1\n")), "hextrack_archive_lag_seconds"); err == nil {
		t.Fatal("a missing histogram parsed")
	}
}

func TestStreamTopic(t *testing.T) {
	tests := []struct {
		key, topic string
		ok         bool
	}{
		{prefix + "feed:trip:{t_abc}", "trip:t_abc", true},
		{prefix + "feed:driver:{d_1}", "driver:d_1", true},
		{prefix + "feed:{ops}", "ops", true},
		{prefix + "feed:trip:t_abc", "", false},
		{prefix + "feed:trip:{t_abc}:rec:trail", "", false}, // a record stream, not feed events
		{prefix + "feed:trip:{}", "", false},
		{"other:feed:trip:{t_abc}", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			topic, ok := streamTopic(tc.key)
			if topic != tc.topic || ok != tc.ok {
				t.Fatalf("streamTopic(%q) = %q, %v; want %q, %v", tc.key, topic, ok, tc.topic, tc.ok)
			}
		})
	}
}
