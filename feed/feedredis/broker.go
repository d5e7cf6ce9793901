package feedredis

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Broker publishes events to per-topic Redis Streams and fans them out to
// local subscribers through one Redis (S)SUBSCRIBE per topic per node.
// Its publishing is the embedded Publisher's, its stream reads the
// embedded Reader's; its own methods are the hub's: Subscribe, Wait, Run
// and Close. All methods are safe for concurrent use.
type Broker struct {
	*Publisher
	*Reader

	rdb     redis.UniversalClient
	cfg     Config
	sharded bool // *redis.ClusterClient: SPUBLISH/SSUBSCRIBE
	m       *metrics
	hub     *hub

	ctx    context.Context // cancelled by Close; parent of background work
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New returns a Broker using rdb (standalone, Sentinel-backed, Cluster or the
// embedded miniredis). It starts no goroutines until the first subscription;
// Publish and Read work right away. Call Close (or Run) to release it.
func New(rdb redis.UniversalClient, cfg Config) *Broker {
	_, sharded := rdb.(*redis.ClusterClient)
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{rdb: rdb, cfg: cfg.withDefaults(), sharded: sharded, ctx: ctx, cancel: cancel}
	b.m = newMetrics(b.cfg.Registerer)
	b.Publisher = &Publisher{rdb: rdb, cfg: b.cfg, sharded: sharded, m: b.m}
	b.Reader = &Reader{rdb: rdb, cfg: b.cfg}
	b.hub = newHub(b)
	return b
}

// Run blocks until ctx is done or Close is called, then closes the broker.
// It lets cmd tie the broker's lifetime to the server's.
func (b *Broker) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-b.ctx.Done():
	}
	b.Close()
	return nil
}

// Close stops the hub: pub/sub connections are closed and every open
// subscription ends with feed.ErrClosed (clients resume by ID on another node).
// Publish and Read keep working (they only use rdb). Close does not close
// rdb, which the caller owns. It is idempotent.
func (b *Broker) Close() error {
	b.once.Do(func() {
		b.cancel()
		b.hub.close()
		b.wg.Wait()
	})
	return nil
}
