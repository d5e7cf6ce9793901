package tripredis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/internal/autopipe"
	"github.com/hextrack/hextrack/trip"
)

// Store reads trips: the trip alone (for other services), snapshots with
// their access check, the cheap ETag of a poll, the stored location and
// the breadcrumbs. It only reads.
type Store struct {
	*base
	shares *Shares // viewers' share links
}

// Get returns a trip without any authorization check (for other services).
func (s *Store) Get(ctx context.Context, id string) (trip.Trip, error) {
	if err := trip.CheckID(id); err != nil {
		return trip.Trip{}, err
	}
	m, err := s.rdb.HGetAll(ctx, tripKey(s.cfg.Prefix, id)).Result()
	if err != nil {
		return trip.Trip{}, fmt.Errorf("trip: get %s: %w", id, err)
	}
	if len(m) == 0 {
		return trip.Trip{}, fmt.Errorf("%w: %s", trip.ErrNotFound, id)
	}
	return decodeTrip(m), nil
}

// Snapshot returns the trip's full state for a, checking that a may see it
// (riders their trips, drivers the trips assigned to them, viewers the one
// trip of a live share link, ops everything).
func (s *Store) Snapshot(ctx context.Context, id string, a trip.Actor) (trip.Snapshot, error) {
	if err := trip.CheckID(id); err != nil {
		return trip.Snapshot{}, err
	}
	snap, err := s.snapshot(ctx, id)
	if err != nil {
		return trip.Snapshot{}, err
	}
	if err := s.authorizeView(ctx, a, snap.Trip); err != nil {
		return trip.Snapshot{}, err
	}
	if a.Role == trip.RoleRider || a.Role == trip.RoleViewer {
		// The recipient reads the delivery PINs; the driver, who enters
		// them, never does.
		if err := s.withPINs(ctx, &snap); err != nil {
			return trip.Snapshot{}, err
		}
	}
	return snap, nil
}

// tagFields are the trip hash fields the snapshot's ETag and its access
// check depend on (see SnapshotTag), in the order of the tf* indexes.
var tagFields = []string{"id", "status", "rider", "driver", "version", "locseq", "loc_ts",
	"eta_leg", "eta_at", "eta_ms", "eta_s", "eta_m", "eta_rv"}

const (
	tfID = iota
	tfStatus
	tfRider
	tfDriver
	tfVersion
	tfLocSeq
	tfLocTS
	tfETALeg
	tfETAAt
	tfETAMs
	tfETAS
	tfETAM
	tfETARV
	tfN // number of tag fields
)

// tagArgs is "HMGET <key> tagFields..." with the fields boxed once: a poll
// copies it and sets the key instead of boxing 13 strings.
var tagArgs = autopipe.HMGetArgs(tagFields...)

// SnapshotTag returns the ETag that Snapshot(ctx, id, a) would carry and the
// trip's status, after the same access check, reading only the fields the
// tag depends on (one HMGET; no stream read, no location or places). A
// poller's If-None-Match is compared with it before the whole snapshot is
// loaded.
func (s *Store) SnapshotTag(ctx context.Context, id string, a trip.Actor) (etag, status string, err error) {
	if err := trip.CheckID(id); err != nil {
		return "", "", err
	}
	var f [tfN]string
	if err := s.reads.HMGet(ctx, tagArgs, tripKey(s.cfg.Prefix, id), f[:]); err != nil {
		return "", "", fmt.Errorf("trip: load %s: %w", id, err)
	}
	if f[tfID] == "" {
		return "", "", fmt.Errorf("%w: %s", trip.ErrNotFound, id)
	}
	t := trip.Trip{ID: f[tfID], Status: f[tfStatus], RiderID: f[tfRider], DriverID: f[tfDriver]}
	t.Version, _ = strconv.ParseInt(f[tfVersion], 10, 64)
	if err := s.authorizeView(ctx, a, t); err != nil {
		return "", "", err
	}
	// As decodeLocation and decodeETA would have it for the snapshot, with
	// no Location or JSON built.
	snap := trip.Snapshot{Version: t.Version}
	if seq, _ := strconv.ParseInt(f[tfLocSeq], 10, 64); seq != 0 && f[tfLocTS] != "" {
		snap.Location = &trip.Location{Seq: seq}
	}
	snap.SetETA(nil, tagETARouteVersion(t.Status, f[tfETALeg], f[tfETAAt], f[tfETAMs], f[tfETAS], f[tfETAM], f[tfETARV]))
	return snap.ETag(), t.Status, nil
}

// tagETARouteVersion is the route version decodeETA returns for these
// fields (0: no ETA of the current leg, or one that doesn't encode), without
// encoding the ETA when it clearly encodes.
func tagETARouteVersion(status, leg, at, ms, secs, dist, rv string) int64 {
	want, _, _ := legOf(status)
	if want == "" || leg != want {
		return 0
	}
	e := trip.ETA{Leg: want, ArriveAt: msTime(at), ComputedAt: msTime(ms)}
	e.Seconds, _ = strconv.ParseFloat(secs, 64)
	e.DistanceM, _ = strconv.ParseFloat(dist, 64)
	e.RouteVersion, _ = strconv.ParseInt(rv, 10, 64)
	if finite(e.Seconds) && finite(e.DistanceM) && jsonYear(e.ArriveAt) && jsonYear(e.ComputedAt) {
		return e.RouteVersion
	}
	if _, err := json.Marshal(e); err != nil {
		return 0
	}
	return e.RouteVersion
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// jsonYear: time.Time's MarshalJSON accepts years 0..9999 only.
func jsonYear(t time.Time) bool { y := t.Year(); return y >= 0 && y <= 9999 }

// Authorize checks that a may see trip id (including, for viewers, that the
// share link is not revoked) and returns the trip. Streams call it again
// periodically so that a revoked link closes them.
func (s *Store) Authorize(ctx context.Context, id string, a trip.Actor) (trip.Trip, error) {
	t, err := s.Get(ctx, id)
	if err != nil {
		return trip.Trip{}, err
	}
	return t, s.authorizeView(ctx, a, t)
}

func (s *Store) authorizeView(ctx context.Context, a trip.Actor, t trip.Trip) error {
	if !trip.CanSee(a, t) {
		return fmt.Errorf("%w: %s may not see trip %s", trip.ErrForbidden, a.Role, t.ID)
	}
	if a.Role == trip.RoleViewer {
		return s.shares.CheckShare(ctx, t.ID, a.Share)
	}
	return nil
}

func (s *Store) snapshot(ctx context.Context, id string) (trip.Snapshot, error) {
	m, pos, err := loadTrip(ctx, s.rdb, s.cfg.Prefix, id)
	if err != nil {
		return trip.Snapshot{}, err
	}
	t := decodeTrip(m)
	snap := trip.Snapshot{Trip: t, Location: decodeLocation(m), Version: t.Version, FeedPosition: pos}
	snap.SetETA(decodeETA(m, t.Status))
	if t.DriverID != "" {
		snap.Driver = &trip.DriverRef{ID: t.DriverID}
	}
	return snap, nil
}

// Excluded returns the drivers who declined, cancelled or were reassigned
// away from the trip (dispatch skips them).
func (s *Store) Excluded(ctx context.Context, id string) ([]string, error) {
	if err := trip.CheckID(id); err != nil {
		return nil, err
	}
	m, err := s.rdb.HGetAll(ctx, tripKey(s.cfg.Prefix, id)).Result()
	if err != nil {
		return nil, fmt.Errorf("trip: excluded %s: %w", id, err)
	}
	var out []string
	for k := range m {
		if d, ok := strings.CutPrefix(k, "x:"); ok && m["driver"] != d {
			out = append(out, d)
		}
	}
	return out, nil
}

// ArrivalView reads what the arrival check needs of trip id, its status,
// driver and pickup, with one HMGET of four fields instead of the whole
// hash (location, ETA and the rest): the check runs on every move of every
// trip. The pickup is decoded only for an assigned trip. A trip that does
// not exist has an empty Status.
func (s *Store) ArrivalView(ctx context.Context, id string) (trip.Trip, error) {
	if err := trip.CheckID(id); err != nil {
		return trip.Trip{}, err
	}
	v, err := s.rdb.HMGet(ctx, tripKey(s.cfg.Prefix, id), "id", "status", "driver", "pickup").Result()
	if err != nil {
		return trip.Trip{}, fmt.Errorf("trip: arrival view %s: %w", id, err)
	}
	str := func(i int) string { x, _ := v[i].(string); return x }
	t := trip.Trip{ID: str(0), Status: str(1), DriverID: str(2)}
	if t.Status == trip.StatusAssigned {
		_ = json.Unmarshal([]byte(str(3)), &t.Pickup)
	}
	return t, nil
}

// LocationOf returns a trip's latest stored fix (nil if none) without an
// authorization check: streams send it right after a (re)connect.
func (s *Store) LocationOf(ctx context.Context, id string) (*trip.Location, error) {
	if err := trip.CheckID(id); err != nil {
		return nil, err
	}
	m, err := s.rdb.HMGet(ctx, tripKey(s.cfg.Prefix, id), "locseq", "loc_drv", "loc_ts", "loc_lat", "loc_lng", "loc_hdg", "loc_spd").Result()
	if err != nil {
		return nil, fmt.Errorf("trip: location %s: %w", id, err)
	}
	names := []string{"locseq", "loc_drv", "loc_ts", "loc_lat", "loc_lng", "loc_hdg", "loc_spd"}
	h := map[string]string{}
	for i, v := range m {
		if sv, ok := v.(string); ok {
			h[names[i]] = sv
		}
	}
	return decodeLocation(h), nil
}

// Path returns the trip's breadcrumbs, oldest first: fixes sampled every
// Config.CrumbEvery or Config.CrumbMeters, at most Config.MaxCrumbs kept. If
// limit > 0 and there are more, they are thinned evenly to limit points
// (first and last kept).
func (s *Store) Path(ctx context.Context, id string, a trip.Actor, limit int) ([]trip.Crumb, error) {
	if _, err := s.Authorize(ctx, id, a); err != nil {
		return nil, err
	}
	raw, err := s.rdb.LRange(ctx, pathKey(s.cfg.Prefix, id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("trip: path %s: %w", id, err)
	}
	out := make([]trip.Crumb, 0, len(raw))
	for _, r := range raw {
		p := strings.Split(r, ",")
		if len(p) != 3 {
			continue
		}
		lat, err1 := strconv.ParseFloat(p[0], 64)
		lng, err2 := strconv.ParseFloat(p[1], 64)
		ms, err3 := strconv.ParseInt(p[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out = append(out, trip.Crumb{Lat: lat, Lng: lng, TS: time.UnixMilli(ms).UTC()})
	}
	return thin(out, limit), nil
}

// thin keeps limit evenly spaced points, the first and last among them.
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

// GetMany reads trips by ID in one pipeline (a Cluster client splits it
// per node), without any authorization check; trips that expired
// meanwhile are left out.
func (s *Store) GetMany(ctx context.Context, ids []string) ([]trip.Trip, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, tripKey(s.cfg.Prefix, id))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("trip: get many: %w", err)
	}
	out := make([]trip.Trip, 0, len(ids))
	for _, c := range cmds {
		if m := c.Val(); len(m) > 0 && m["id"] != "" {
			out = append(out, decodeTrip(m))
		}
	}
	return out, nil
}
