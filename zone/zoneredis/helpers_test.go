package zoneredis_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"context"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/zone/zoneredis"
)

// storeRDB opens a second client of the test Redis (another node).
func (e env) storeRDB(t *testing.T) redis.UniversalClient {
	t.Helper()
	opt, err := redis.ParseURL(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// tracker2 is another node's tracker over the same Redis and prefix.
func (e env) tracker2(t *testing.T) *zoneredis.Tracker {
	t.Helper()
	rdb := e.storeRDB(t)
	cfg := e.store.Config()
	b := feedredis.New(rdb, feedredis.Config{Prefix: cfg.Prefix})
	t.Cleanup(func() { _ = b.Close() })
	s := zoneredis.NewStore(rdb, cfg)
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	return zoneredis.NewTracker(s, b.Publisher)
}
