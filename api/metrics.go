package api

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the HTTP-level Prometheus series of one Server.
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	pingsAccepted prometheus.Counter
	pingsRejected *prometheus.CounterVec
	ingest        prometheus.Histogram
	nearby        prometheus.Histogram
	connections   *prometheus.GaugeVec

	// series caches the children of requests and duration per (route,
	// method, status): WithLabelValues hashes its labels and allocates on
	// every call. Routes are patterns and statuses few, so it stays small.
	// Readers load the map without a lock (a sync.Map would allocate to box
	// the key); a new label set copies it under seriesMu.
	series   atomic.Pointer[map[seriesKey]*httpSeries]
	seriesMu sync.Mutex
}

type seriesKey struct {
	route, method string
	status        int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// seriesFor returns the cached children for one label set.
func (m *metrics) seriesFor(route, method string, status int) *httpSeries {
	k := seriesKey{route, method, status}
	if p := m.series.Load(); p != nil {
		if hs, ok := (*p)[k]; ok {
			return hs
		}
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	var old map[seriesKey]*httpSeries
	if p := m.series.Load(); p != nil {
		old = *p
	}
	if hs, ok := old[k]; ok {
		return hs
	}
	hs := &httpSeries{
		requests: m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
		duration: m.duration.WithLabelValues(route),
	}
	next := make(map[seriesKey]*httpSeries, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[k] = hs
	m.series.Store(&next)
	return hs
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hextrack_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hextrack_http_request_duration_seconds", Help: "HTTP request latency by route (streams excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		pingsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hextrack_pings_accepted_total", Help: "Driver pings accepted.",
		}),
		pingsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hextrack_pings_rejected_total", Help: "Driver pings rejected, by reason.",
		}, []string{"reason"}),
		ingest: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hextrack_ingest_duration_seconds", Help: "Time to apply one ping batch.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1},
		}),
		nearby: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hextrack_nearby_duration_seconds", Help: "Time to answer one nearby query.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1},
		}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hextrack_connections", Help: "Open streaming connections by transport: sse (trip and ops streams), ws (driver WebSockets), longpoll (trip and command long-polls waiting).",
		}, []string{"transport"}),
	}
	reg.MustRegister(m.requests, m.duration, m.pingsAccepted, m.pingsRejected, m.ingest, m.nearby, m.connections)
	return m
}

// observe records every request; c.Path() is the route pattern, so ids
// (and tokens in query strings) never become label values.
func (m *metrics) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			if ae, _ := toError(err); ae != nil {
				status = ae.Status
			}
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		hs := m.seriesFor(route, methodLabel(c.Request().Method), status)
		hs.requests.Inc()
		hs.duration.Observe(time.Since(start).Seconds())
		return err
	}
}

// methodLabel keeps the method label to the methods the API serves, so a
// client sending made-up methods cannot create unbounded metric series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// alsoGauge is a gauge whose Inc and Dec move a second gauge too: a trip
// SSE stream counts in hextrack_sse_streams and in hextrack_connections.
type alsoGauge struct {
	prometheus.Gauge
	also prometheus.Gauge
}

func (g alsoGauge) Inc() { g.Gauge.Inc(); g.also.Inc() }
func (g alsoGauge) Dec() { g.Gauge.Dec(); g.also.Dec() }
