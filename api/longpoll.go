package api

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// Long-poll limits.
const (
	defaultPollLimit = 100
	maxPollLimit     = 1000
	maxPollWait      = 30 * time.Second
)

// tripPolls serve a trip's feed as JSON long-polls.
type tripPolls struct {
	feed     Feed
	snaps    Snapshots
	draining <-chan struct{}
	waiting  prometheus.Gauge // trip long-polls waiting now (hextrack_connections)
}

type pollReply struct {
	Events []feed.Event `json:"events"`
	// Next is the cursor for the following poll (after=).
	Next string `json:"next"`
	// Location is the trip's latest location (live-only, never in events).
	Location *trip.Location `json:"location"`
}

// serve serves the trip feed as JSON: events after `after` (from the
// oldest retained when empty), at most `limit` (≤ 1000), waiting up to
// `wait` seconds (≤ 30) for one when there are none. A cursor older than
// the stream retains (or unknown) is a 410 whose error details are a fresh
// snapshot: continue with after=<its feed_position>.
func (s *tripPolls) serve(c echo.Context, id string, a trip.Actor) error {
	q := c.QueryParams()
	limit, wait, err := pollParams(q)
	if err != nil {
		return err
	}
	after := q.Get("after")
	if after != "" {
		if _, err := feed.ParseID(after); err != nil {
			return err
		}
	}
	select {
	case <-s.draining:
		wait = 0 // answer at once; the client's next poll goes to another node
	default:
	}
	ctx := c.Request().Context()
	s.waiting.Inc()
	evs, next, err := s.feed.Wait(ctx, trip.Topic(id), after, limit, wait)
	s.waiting.Dec()
	if errors.Is(err, feed.ErrTrimmed) || errors.Is(err, feed.ErrUnknownID) {
		snap, serr := s.snaps.Snapshot(ctx, id, a)
		if serr != nil {
			return serr
		}
		return &Error{Status: http.StatusGone, Code: "cursor_expired",
			Message: "the cursor is older than the retained events: start again from the snapshot's feed_position",
			Details: snap}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil // the client went away
		}
		return err
	}
	if evs == nil {
		evs = []feed.Event{}
	}
	loc, err := s.snaps.LocationOf(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pollReply{Events: evs, Next: next, Location: loc})
}

// pollParams reads the long-poll parameters shared by the trip feed and the
// driver command channel: limit (1–1000, default defaultPollLimit) and wait
// (0–30 s, fractions allowed).
func pollParams(q url.Values) (limit int, wait time.Duration, err error) {
	limit = defaultPollLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPollLimit {
			return 0, 0, &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "limit must be within [1, 1000]"}
		}
		limit = n
	}
	if v := q.Get("wait"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > maxPollWait.Seconds() {
			return 0, 0, &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "wait must be within [0, 30] seconds"}
		}
		wait = time.Duration(f * float64(time.Second))
	}
	return limit, wait, nil
}
