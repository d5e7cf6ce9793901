package podredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/pod"
)

// Config is the Store's configuration.
type Config struct {
	Prefix string        // prefix of every key
	TTL    time.Duration // a trip's hash lives this long after its last record; 0: 7 days
}

// Store is pod.Store on Redis.
type Store struct {
	rdb redis.UniversalClient
	cfg Config
}

var _ pod.Store = (*Store)(nil)

// New returns the Store on rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.TTL <= 0 {
		cfg.TTL = 7 * 24 * time.Hour
	}
	return &Store{rdb: rdb, cfg: cfg}
}

func (s *Store) key(tripID string) string { return s.cfg.Prefix + "pod:{" + tripID + "}" }

func field(stopID, kind string) string { return stopID + "/" + kind }

// recordScript: KEYS[1] the trip's hash; ARGV field, record, ttl ms.
// Returns the record replaced, or nil.
var recordScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return old`)

// Record stores r and returns the record it replaced.
func (s *Store) Record(ctx context.Context, r pod.Record) (pod.Record, bool, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return pod.Record{}, false, fmt.Errorf("podredis: encode: %w", err)
	}
	v, err := recordScript.Run(ctx, s.rdb, []string{s.key(r.TripID)}, field(r.StopID, r.Kind), b, s.cfg.TTL.Milliseconds()).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return pod.Record{}, false, nil
	case err != nil:
		return pod.Record{}, false, fmt.Errorf("podredis: record: %w", err)
	}
	old, err := decode(v)
	return old, err == nil, err
}

// Get is the record of (trip, stop, kind), or pod.ErrNotFound.
func (s *Store) Get(ctx context.Context, tripID, stopID, kind string) (pod.Record, error) {
	v, err := s.rdb.HGet(ctx, s.key(tripID), field(stopID, kind)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return pod.Record{}, fmt.Errorf("%w: no %s for stop %s", pod.ErrNotFound, kind, stopID)
	case err != nil:
		return pod.Record{}, fmt.Errorf("podredis: get: %w", err)
	}
	return decode(v)
}

// List is the stop's records, photo first.
func (s *Store) List(ctx context.Context, tripID, stopID string) ([]pod.Record, error) {
	vs, err := s.rdb.HMGet(ctx, s.key(tripID), field(stopID, pod.KindPhoto), field(stopID, pod.KindSignature)).Result()
	if err != nil {
		return nil, fmt.Errorf("podredis: list: %w", err)
	}
	var out []pod.Record
	for _, v := range vs {
		str, ok := v.(string)
		if !ok {
			continue
		}
		r, err := decode(str)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func decode(v string) (pod.Record, error) {
	var r pod.Record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return pod.Record{}, fmt.Errorf("podredis: decode a record: %w", err)
	}
	return r, nil
}
