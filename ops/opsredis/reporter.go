package opsredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Node reports. Per-node figures (open connections by transport, pings
// accepted, feed delivery lag) are read from each node's own Prometheus
// registry and shared through Redis: every node writes a report every
// ReportEvery into one hash (field = node ID, with a timestamp; the key has
// a TTL and a node's field is removed when its Reporter stops), and the
// summary adds up the reports fresher than NodeStale.
const (
	ReportEvery = 2 * time.Second
	NodeStale   = 3 * ReportEvery
)

func nodesKey(prefix string) string { return prefix + "ops:{ops-nodes}" }

// nodeReport is one node's figures over its last report period.
type nodeReport struct {
	TS          int64            `json:"ts"` // unix ms
	Connections map[string]int64 `json:"connections"`
	IngestRate  float64          `json:"ingest_rate"` // pings accepted per second
	LagSum      float64          `json:"lag_sum"`     // feed delivery lag seconds, summed over the period
	LagCount    float64          `json:"lag_count"`   // and the events it covers
}

type nodeSample struct {
	at       time.Time
	pings    float64
	lagSum   float64
	lagCount float64
}

// Reporter writes this node's report (read from reg) every ReportEvery
// while Run runs.
type Reporter struct {
	rdb    redis.UniversalClient
	reg    prometheus.Gatherer
	prefix string
	node   string
	last   nodeSample // the previous sample of this node's counters
}

// NewReporter returns the reporter of this node (a random node ID), reading
// its figures from reg and writing under prefix.
func NewReporter(rdb redis.UniversalClient, reg prometheus.Gatherer, prefix string) *Reporter {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Reporter{rdb: rdb, reg: reg, prefix: prefix, node: hex.EncodeToString(b[:])}
}

// Run writes a report every ReportEvery until ctx is done; then it removes
// the node's field so the summary stops counting it at once (cancel ctx
// when the node starts draining). Redis errors skip a report (the field
// ages out).
func (r *Reporter) Run(ctx context.Context) error {
	t := time.NewTicker(ReportEvery)
	defer t.Stop()
	key := nodesKey(r.prefix)
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			r.rdb.HDel(dctx, key, r.node)
			cancel()
			return nil
		case <-t.C:
			b, err := json.Marshal(r.sample(time.Now()))
			if err != nil {
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			pipe := r.rdb.Pipeline()
			pipe.HSet(wctx, key, r.node, b)
			pipe.Expire(wctx, key, 10*NodeStale)
			_, _ = pipe.Exec(wctx)
			cancel()
		}
	}
}

// sample reads this node's counters from its registry and turns them
// into a report over the time since the previous sample.
func (r *Reporter) sample(now time.Time) nodeReport {
	rep := nodeReport{TS: now.UnixMilli(), Connections: map[string]int64{}}
	cur := nodeSample{at: now}
	mfs, _ := r.reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "hextrack_connections":
			for _, m := range mf.GetMetric() {
				t := ""
				for _, l := range m.GetLabel() {
					if l.GetName() == "transport" {
						t = l.GetValue()
					}
				}
				rep.Connections[t] += int64(m.GetGauge().GetValue())
			}
		case "hextrack_sse_streams":
			for _, m := range mf.GetMetric() {
				rep.Connections["sse"] += int64(m.GetGauge().GetValue())
			}
		case "hextrack_pings_accepted_total":
			for _, m := range mf.GetMetric() {
				cur.pings += m.GetCounter().GetValue()
			}
		case "hextrack_feed_delivery_lag_seconds":
			for _, m := range mf.GetMetric() {
				cur.lagSum += m.GetHistogram().GetSampleSum()
				cur.lagCount += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	prev := r.last
	r.last = cur
	if !prev.at.IsZero() {
		if dt := now.Sub(prev.at).Seconds(); dt > 0 {
			rep.IngestRate = max(0, cur.pings-prev.pings) / dt
		}
		rep.LagSum = max(0, cur.lagSum-prev.lagSum)
		rep.LagCount = max(0, cur.lagCount-prev.lagCount)
	}
	return rep
}
