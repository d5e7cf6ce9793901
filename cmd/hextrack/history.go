package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/history"
	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// This file serves trips from the archive once Redis no longer has them:
// archivedTrips decorates api's TripViews and Snapshots, archivedFeed its
// Feed, so GET /v1/trips/{id}, /events (long-poll) and /path answer with
// the same ids and shapes after a trip's keys expired (or Redis was
// wiped), with today's access rules; and archiveReads hands the open
// archive to the history routes (api/history).

var (
	_ api.TripViews   = (*archivedTrips)(nil)
	_ api.Snapshots   = (*archivedTrips)(nil)
	_ api.Feed        = archivedFeed{}
	_ history.Trips   = archiveReads{}
	_ history.Records = archiveReads{}
	_ history.Drivers = archiveReads{}
)

// archiveReads are the open archive's queries. Until the archive is open,
// and when its database fails, they return history.ErrNoArchive (503,
// retry): the client's query is not at fault. The archive's own sentinels
// (not found, bad cursor, range, limit) pass as they are.
type archiveReads struct{ a *nodeArchive }

func (r archiveReads) store() (interface {
	history.Trips
	history.Records
	history.Drivers
}, error) {
	if s := r.a.Store(); s != nil {
		return s, nil
	}
	return nil, history.ErrNoArchive
}

// unavailable passes the archive's sentinels and turns anything else (the
// database failing) into history.ErrNoArchive, keeping its text for logs.
func unavailable(err error) error {
	for _, s := range []error{archive.ErrNotFound, archive.ErrInvalid, archive.ErrInvalidCursor,
		archive.ErrInvalidRange, archive.ErrInvalidLimit, history.ErrNoArchive} {
		if errors.Is(err, s) {
			return err
		}
	}
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", history.ErrNoArchive, err)
}

func (r archiveReads) ListTrips(ctx context.Context, q archive.TripQuery) (archive.TripPage, error) {
	s, err := r.store()
	if err != nil {
		return archive.TripPage{}, err
	}
	p, err := s.ListTrips(ctx, q)
	return p, unavailable(err)
}

func (r archiveReads) Trip(ctx context.Context, id string) (archive.Trip, error) {
	s, err := r.store()
	if err != nil {
		return archive.Trip{}, err
	}
	t, err := s.Trip(ctx, id)
	return t, unavailable(err)
}

func (r archiveReads) Events(ctx context.Context, q archive.EventQuery) ([]archive.Event, error) {
	s, err := r.store()
	if err != nil {
		return nil, err
	}
	evs, err := s.Events(ctx, q)
	return evs, unavailable(err)
}

func (r archiveReads) Trail(ctx context.Context, q archive.TrailQuery) ([]archive.Point, error) {
	s, err := r.store()
	if err != nil {
		return nil, err
	}
	pts, err := s.Trail(ctx, q)
	return pts, unavailable(err)
}

func (r archiveReads) Ledger(ctx context.Context, tripID string) ([]archive.Entry, error) {
	s, err := r.store()
	if err != nil {
		return nil, err
	}
	l, err := s.Ledger(ctx, tripID)
	return l, unavailable(err)
}

func (r archiveReads) DriverDays(ctx context.Context, q archive.DriverQuery) ([]archive.Day, error) {
	s, err := r.store()
	if err != nil {
		return nil, err
	}
	d, err := s.DriverDays(ctx, q)
	return d, unavailable(err)
}

func (r archiveReads) Shifts(ctx context.Context, q archive.DriverQuery) ([]archive.Shift, error) {
	s, err := r.store()
	if err != nil {
		return nil, err
	}
	sh, err := s.Shifts(ctx, q)
	return sh, unavailable(err)
}

// historyRoutes are the history routes over the node's archive (nil: none;
// they answer 503).
func historyRoutes(a *nodeArchive) *history.Routes {
	if a == nil {
		return history.New(history.Deps{})
	}
	r := archiveReads{a}
	return history.New(history.Deps{Trips: r, Records: r, Drivers: r})
}

// tripArchive is what the fallback reads of the archive.
type tripArchive interface {
	Trip(ctx context.Context, id string) (archive.Trip, error)
	Events(ctx context.Context, q archive.EventQuery) ([]archive.Event, error)
	Trail(ctx context.Context, q archive.TrailQuery) ([]archive.Point, error)
}

// shareChecker checks a viewer's share link (tripredis.Shares).
type shareChecker interface {
	CheckShare(ctx context.Context, id, shareID string) error
}

// archivedTrips are the trip reads of the Redis store, falling back to the
// archive when Redis answers trip.ErrNotFound: the snapshot is the
// archived one (the trip's record holds the snapshot at its last version,
// byte for byte), the path is re-sampled from the archived trail by the
// breadcrumb rule of tripredis (crumbs), and the access check is the
// store's (trip.CanSee, and a viewer's share link must be live). A trip
// not in the archive either keeps Redis's error. A trip archived before
// it ended (Redis lost it under way) is marked TrackingLost, without ETA.
type archivedTrips struct {
	views  api.TripViews
	snaps  api.Snapshots
	shares shareChecker
	arch   tripArchive
	crumbs crumbRule
	// gone are the trips this node served from the archive: the feed and
	// the latest location of those come from the archive too (their
	// routes authorize first, which fills this). A trip's ID is never
	// reused, so an entry stays true; the set is bounded (cleared when
	// full: the next Authorize fills it again).
	gone goneTrips
}

func newArchivedTrips(store *tripredis.Store, shares shareChecker, arch tripArchive, cfg tripredis.Config) *archivedTrips {
	return &archivedTrips{views: store, snaps: store, shares: shares, arch: arch,
		crumbs: crumbRule{every: cfg.CrumbEvery, meters: cfg.CrumbMeters, max: cfg.MaxCrumbs}}
}

// archived is trip id's archived snapshot as a may see it, or notFound
// (Redis's error) when the archive does not have it.
func (t *archivedTrips) archived(ctx context.Context, id string, a trip.Actor, notFound error) (trip.Snapshot, error) {
	rec, err := t.arch.Trip(ctx, id)
	if errors.Is(err, archive.ErrNotFound) || errors.Is(err, archive.ErrInvalid) {
		return trip.Snapshot{}, notFound
	}
	if err != nil {
		return trip.Snapshot{}, err
	}
	var snap trip.Snapshot
	if len(rec.Snapshot) == 0 || json.Unmarshal(rec.Snapshot, &snap) != nil || snap.Trip.ID != id {
		return trip.Snapshot{}, notFound
	}
	if !trip.CanSee(a, snap.Trip) {
		return trip.Snapshot{}, fmt.Errorf("%w: %s may not see trip %s", trip.ErrForbidden, a.Role, id)
	}
	if a.Role == trip.RoleViewer {
		if err := t.shares.CheckShare(ctx, id, a.Share); err != nil {
			return trip.Snapshot{}, err
		}
	}
	if !trip.Terminal(snap.Trip.Status) {
		// Under way when Redis lost it: frozen at its last archived state.
		// Its estimate counts down to nothing, so there is none.
		snap.TrackingLost = true
		snap.ETA = nil
	}
	t.gone.add(id)
	return snap, nil
}

func (t *archivedTrips) SnapshotTag(ctx context.Context, id string, a trip.Actor) (string, string, error) {
	etag, status, err := t.views.SnapshotTag(ctx, id, a)
	if !errors.Is(err, trip.ErrNotFound) {
		return etag, status, err
	}
	snap, err := t.archived(ctx, id, a, err)
	if err != nil {
		return "", "", err
	}
	return snap.ETag(), snap.Trip.Status, nil
}

func (t *archivedTrips) Authorize(ctx context.Context, id string, a trip.Actor) (trip.Trip, error) {
	tr, err := t.views.Authorize(ctx, id, a)
	if !errors.Is(err, trip.ErrNotFound) {
		return tr, err
	}
	snap, err := t.archived(ctx, id, a, err)
	return snap.Trip, err
}

func (t *archivedTrips) Snapshot(ctx context.Context, id string, a trip.Actor) (trip.Snapshot, error) {
	snap, err := t.snaps.Snapshot(ctx, id, a)
	if !errors.Is(err, trip.ErrNotFound) {
		return snap, err
	}
	return t.archived(ctx, id, a, err)
}

// LocationOf is the archived snapshot's location for a trip served from
// the archive (the trip's last fix when it last changed), else Redis's.
func (t *archivedTrips) LocationOf(ctx context.Context, id string) (*trip.Location, error) {
	if !t.gone.has(id) {
		return t.snaps.LocationOf(ctx, id)
	}
	snap, err := t.archived(ctx, id, trip.Actor{Role: trip.RoleSystem}, nil)
	if err != nil || snap.Trip.ID == "" {
		return nil, err
	}
	return snap.Location, nil
}

// maxTrailPages bounds the trail read for one path (× archive.MaxTrailLimit
// fixes: hours of driving at one fix a second).
const maxTrailPages = 10

func (t *archivedTrips) Path(ctx context.Context, id string, a trip.Actor, limit int) ([]trip.Crumb, error) {
	crumbs, err := t.views.Path(ctx, id, a, limit)
	if !errors.Is(err, trip.ErrNotFound) {
		return crumbs, err
	}
	if _, err := t.archived(ctx, id, a, err); err != nil {
		return nil, err
	}
	q := archive.TrailQuery{TripID: id, Limit: archive.MaxTrailLimit}
	s := t.crumbs.sampler()
	for range maxTrailPages {
		pts, err := t.arch.Trail(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, p := range pts {
			s.add(p)
		}
		if len(pts) < q.Limit {
			break
		}
		q.After = pts[len(pts)-1].Seq
	}
	if s.out == nil {
		return []trip.Crumb{}, nil // as Redis answers a trip without crumbs: "points":[]
	}
	return thin(s.out, limit), nil
}

// archivedFeed is the node's feed, with the long-polled events of a trip
// served from the archive (archivedTrips.gone) read from the archive: the
// same envelopes and IDs, oldest first.
type archivedFeed struct {
	api.Feed
	trips *archivedTrips
}

func (f archivedFeed) Wait(ctx context.Context, topic, afterID string, limit int, d time.Duration) ([]feed.Event, string, error) {
	id, ok := strings.CutPrefix(topic, "trip:")
	if !ok || !f.trips.gone.has(id) {
		return f.Feed.Wait(ctx, topic, afterID, limit, d)
	}
	evs, err := f.trips.arch.Events(ctx, archive.EventQuery{Topic: topic, After: afterID, Limit: limit})
	if err != nil {
		return nil, "", err
	}
	next := afterID
	if next == "" {
		next = "0-0" // as feedredis: the position of a topic without events
	}
	if len(evs) == 0 {
		// Nothing will follow: wait as a live poll would, so that a
		// client looping on it does not spin.
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
		return nil, next, nil
	}
	out := make([]feed.Event, len(evs))
	for i, e := range evs {
		out[i] = feed.Event{ID: e.ID, Type: e.Type, Topic: e.Topic, TS: e.TS, Data: e.Data}
	}
	return out, out[len(out)-1].ID, nil
}

// goneTrips is a bounded set of trip IDs.
type goneTrips struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

const maxGoneTrips = 10000

func (g *goneTrips) add(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ids == nil || len(g.ids) >= maxGoneTrips {
		g.ids = make(map[string]struct{})
	}
	g.ids[id] = struct{}{}
}

func (g *goneTrips) has(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.ids[id]
	return ok
}

// crumbRule is tripredis's breadcrumb sampling (its location script): a
// fix becomes a crumb when it is the first, or the last crumb is at least
// every old or meters away (equirectangular, at the fix's latitude); at
// most max are kept (the oldest dropped). Positions are kept as the script
// stores them (7 decimals) and times to the millisecond, so a trail
// re-sampled here gives the crumbs Redis held.
type crumbRule struct {
	every  time.Duration
	meters float64
	max    int
}

type crumbSampler struct {
	rule crumbRule
	out  []trip.Crumb
}

func (r crumbRule) sampler() *crumbSampler { return &crumbSampler{rule: r} }

func (s *crumbSampler) add(p archive.Point) {
	c := trip.Crumb{Lat: round7(p.Lat), Lng: round7(p.Lng), TS: time.UnixMilli(p.TS.UnixMilli()).UTC()}
	if n := len(s.out); n > 0 {
		last := s.out[n-1]
		const rad, earth = math.Pi / 180, 6371008.8
		dx := (c.Lng - last.Lng) * rad * math.Cos(c.Lat*rad) * earth
		dy := (c.Lat - last.Lat) * rad * earth
		if c.TS.Sub(last.TS) < s.rule.every && math.Sqrt(dx*dx+dy*dy) < s.rule.meters {
			return
		}
	}
	s.out = append(s.out, c)
	if s.rule.max > 0 && len(s.out) > s.rule.max {
		s.out = s.out[len(s.out)-s.rule.max:]
	}
}

// round7 is v as the location script stores it ('f', 7 decimals).
func round7(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 7, 64), 64)
	return r
}

// thin keeps limit evenly spaced crumbs, the first and last among them
// (tripredis.Store.Path's rule).
func thin(c []trip.Crumb, limit int) []trip.Crumb {
	if limit <= 0 || len(c) <= limit {
		return c
	}
	if limit == 1 {
		return c[len(c)-1:]
	}
	out := make([]trip.Crumb, 0, limit)
	step := float64(len(c)-1) / float64(limit-1)
	for i := range limit {
		out = append(out, c[int(math.Round(float64(i)*step))])
	}
	return out
}
