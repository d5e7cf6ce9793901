package zoneredis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/zone"
)

// Config configures the store and tracker. Zero values are documented per
// field.
type Config struct {
	// Prefix is prepended to every Redis key. Zero: "".
	Prefix string
	// Zone bounds zones (zone.Config's zero values).
	Zone zone.Config
	// Reload is how often the zones' version is checked for changes made
	// on other nodes. Zero: 1 s.
	Reload time.Duration
	// Stale is how long after its last fix a driver inside a zone is
	// exited (reason "stale"). Zero: 30 s (georedis's default).
	Stale time.Duration
	// StateTTL is how long an idle driver's zone state is kept. Zero: 24 h.
	StateTTL time.Duration
	// Workers run the queued moves. Zero: 4.
	Workers int
	// Logger logs failed steps. Zero: slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Zero: time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Reload <= 0 {
		c.Reload = time.Second
	}
	if c.Stale <= 0 {
		c.Stale = 30 * time.Second
	}
	if c.StateTTL <= 0 {
		c.StateTTL = 24 * time.Hour
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Zone = c.Zone.WithDefaults()
	return c
}

// Publisher appends durable feed events (feedredis.Publisher).
type Publisher interface {
	PublishParams(ctx context.Context, p feed.Publication) (keys []string, args []any, err error)
	Publish(ctx context.Context, p feed.Publication) (string, error)
}

// Store keeps the zones in Redis and the node's index of them.
type Store struct {
	rdb redis.UniversalClient
	cfg Config

	idx     atomic.Pointer[zone.Index]
	version atomic.Int64 // of idx; -1 before the first load
	reload  sync.Mutex   // one rebuild at a time
}

// NewStore returns a store; call Reload (or Run) before relying on Index.
func NewStore(rdb redis.UniversalClient, cfg Config) *Store {
	s := &Store{rdb: rdb, cfg: cfg.withDefaults()}
	empty, _ := zone.NewIndex(nil)
	s.idx.Store(empty)
	s.version.Store(-1)
	return s
}

// Config is the store's configuration with defaults filled.
func (s *Store) Config() Config { return s.cfg }

// Index is the node's current index (never nil).
func (s *Store) Index() *zone.Index { return s.idx.Load() }

// Create stores a new zone.
func (s *Store) Create(ctx context.Context, in zone.Input) (zone.Zone, error) {
	z, err := zone.New(in, s.cfg.Zone, s.cfg.Now().UTC())
	if err != nil {
		return zone.Zone{}, err
	}
	if _, err := zone.NewIndex([]zone.Zone{z}); err != nil {
		return zone.Zone{}, fmt.Errorf("%w: %w", zone.ErrTooLarge, err)
	}
	b, err := json.Marshal(z)
	if err != nil {
		return zone.Zone{}, err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.zonesKey(), z.ID, b)
		p.Incr(ctx, s.versionKey())
		return nil
	})
	if err != nil {
		return zone.Zone{}, fmt.Errorf("zone: create: %w", err)
	}
	return z, s.Reload(ctx)
}

// Get returns one zone from Redis.
func (s *Store) Get(ctx context.Context, id string) (zone.Zone, error) {
	if !zone.ValidID(id) {
		return zone.Zone{}, fmt.Errorf("%w: %q", zone.ErrNotFound, id)
	}
	b, err := s.rdb.HGet(ctx, s.zonesKey(), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return zone.Zone{}, fmt.Errorf("%w: %s", zone.ErrNotFound, id)
	}
	if err != nil {
		return zone.Zone{}, fmt.Errorf("zone: get: %w", err)
	}
	var z zone.Zone
	if err := json.Unmarshal(b, &z); err != nil {
		return zone.Zone{}, fmt.Errorf("zone: get %s: %w", id, err)
	}
	return z, nil
}

// List returns every zone, by id.
func (s *Store) List(ctx context.Context) ([]zone.Zone, error) {
	m, err := s.rdb.HGetAll(ctx, s.zonesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("zone: list: %w", err)
	}
	out := make([]zone.Zone, 0, len(m))
	for id, b := range m {
		var z zone.Zone
		if err := json.Unmarshal([]byte(b), &z); err != nil {
			return nil, fmt.Errorf("zone: list %s: %w", id, err)
		}
		out = append(out, z)
	}
	slices.SortFunc(out, func(a, b zone.Zone) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// updateScript replaces a zone if it is still the version read.
var updateScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 'gone' end
if cur ~= ARGV[2] then return 'conflict' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
return 'ok'
`)

// Update changes a zone (nil fields of in are kept). Concurrent updates of
// one zone are applied one after the other.
func (s *Store) Update(ctx context.Context, id string, in zone.Input) (zone.Zone, error) {
	for range 10 {
		if !zone.ValidID(id) {
			return zone.Zone{}, fmt.Errorf("%w: %q", zone.ErrNotFound, id)
		}
		old, err := s.rdb.HGet(ctx, s.zonesKey(), id).Result()
		if errors.Is(err, redis.Nil) {
			return zone.Zone{}, fmt.Errorf("%w: %s", zone.ErrNotFound, id)
		}
		if err != nil {
			return zone.Zone{}, fmt.Errorf("zone: update: %w", err)
		}
		var z zone.Zone
		if err := json.Unmarshal([]byte(old), &z); err != nil {
			return zone.Zone{}, err
		}
		if err := z.Apply(in, s.cfg.Zone); err != nil {
			return zone.Zone{}, err
		}
		if _, err := zone.NewIndex([]zone.Zone{z}); err != nil {
			return zone.Zone{}, fmt.Errorf("%w: %w", zone.ErrTooLarge, err)
		}
		z.Version++
		z.UpdatedAt = s.cfg.Now().UTC()
		b, err := json.Marshal(z)
		if err != nil {
			return zone.Zone{}, err
		}
		r, err := updateScript.Run(ctx, s.rdb, []string{s.zonesKey(), s.versionKey()}, id, old, b).Text()
		if err != nil {
			return zone.Zone{}, fmt.Errorf("zone: update: %w", err)
		}
		switch r {
		case "gone":
			return zone.Zone{}, fmt.Errorf("%w: %s", zone.ErrNotFound, id)
		case "ok":
			return z, s.Reload(ctx)
		}
	}
	return zone.Zone{}, fmt.Errorf("zone: update %s: too many concurrent changes", id)
}

// Delete removes a zone. Drivers inside it are exited (zone_deleted) on
// their next fix; the zone's set of drivers inside is removed.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !zone.ValidID(id) {
		return fmt.Errorf("%w: %q", zone.ErrNotFound, id)
	}
	var n *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.HDel(ctx, s.zonesKey(), id)
		p.Incr(ctx, s.versionKey())
		p.Del(ctx, s.insideKey(id))
		return nil
	})
	if err != nil {
		return fmt.Errorf("zone: delete: %w", err)
	}
	if n.Val() == 0 {
		return fmt.Errorf("%w: %s", zone.ErrNotFound, id)
	}
	return s.Reload(ctx)
}

// Reload rebuilds the index if the zones' version moved since the last
// load.
func (s *Store) Reload(ctx context.Context) error {
	v, err := s.rdb.Get(ctx, s.versionKey()).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("zone: reload: %w", err)
	}
	if v == s.version.Load() {
		return nil
	}
	s.reload.Lock()
	defer s.reload.Unlock()
	if v == s.version.Load() {
		return nil
	}
	zs, err := s.List(ctx)
	if err != nil {
		return err
	}
	idx, err := zone.NewIndexFrom(s.Index(), zs)
	if err != nil {
		return fmt.Errorf("zone: reload: %w", err)
	}
	// The version read before the list: a change in between is seen on
	// the next reload (the list may already hold it; rebuilding again is
	// harmless).
	s.idx.Store(idx)
	s.version.Store(v)
	return nil
}

// Serves returns zone.ErrOutsideServiceArea when p is outside every
// service_area zone while one exists (trip requests).
func (s *Store) Serves(_ context.Context, p geo.Point) error {
	if !s.Index().Serves(p) {
		return fmt.Errorf("%w: %.6f,%.6f", zone.ErrOutsideServiceArea, p.Lat, p.Lng)
	}
	return nil
}

// Drivers lists the drivers inside zone id, longest inside first. The
// per-zone set is checked against each driver's state (the state is the
// truth; a stale set entry is dropped).
func (s *Store) Drivers(ctx context.Context, id string) ([]zone.Inside, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	ids, err := s.rdb.ZRange(ctx, s.insideKey(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("zone: drivers: %w", err)
	}
	out := make([]zone.Inside, 0, len(ids))
	var gone []any
	for _, d := range ids {
		st, _, err := s.loadState(ctx, d)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(st.Inside, func(p zone.Presence) bool { return p.Zone == id })
		if i < 0 || st.Last == nil {
			gone = append(gone, d)
			continue
		}
		p := st.Inside[i]
		out = append(out, zone.Inside{DriverID: d, Since: p.Since, Dwelt: p.Dwelt, Last: *st.Last})
	}
	if len(gone) > 0 {
		_ = s.rdb.ZRem(ctx, s.insideKey(id), gone...).Err()
	}
	slices.SortFunc(out, func(a, b zone.Inside) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.DriverID, b.DriverID))
	})
	return out, nil
}

// loadState reads a driver's zone state and its raw form ("" when none).
func (s *Store) loadState(ctx context.Context, driverID string) (zone.State, string, error) {
	raw, err := s.rdb.Get(ctx, s.stateKey(driverID)).Result()
	if errors.Is(err, redis.Nil) {
		return zone.State{}, "", nil
	}
	if err != nil {
		return zone.State{}, "", fmt.Errorf("zone: state %s: %w", driverID, err)
	}
	st, err := decodeState(raw)
	if err != nil {
		return zone.State{}, "", fmt.Errorf("zone: state %s: %w", driverID, err)
	}
	return st, raw, nil
}

// decodeState parses a stored state ("": none).
func decodeState(raw string) (zone.State, error) {
	var st zone.State
	if raw == "" {
		return st, nil
	}
	err := json.Unmarshal([]byte(raw), &st)
	return st, err
}

// Run reloads the index every Config.Reload until ctx is done.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Reload)
	defer t.Stop()
	for {
		if err := s.Reload(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("zones: reload", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
