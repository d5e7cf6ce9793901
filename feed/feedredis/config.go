package feedredis

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes a Broker. Every zero value means the documented default, so
// Config{} is a working configuration.
type Config struct {
	// MaxLen bounds each topic's stream to about this many events
	// (XADD MAXLEN ~). 0 means 10,000; negative means no length bound.
	MaxLen int64
	// MaxAge trims events older than this (XTRIM MINID ~ on every publish)
	// and lets an idle stream key expire after it. 0 means 24h; negative
	// means no age bound and no expiry.
	MaxAge time.Duration
	// DedupeTTL is how long an idempotency key remembers the ID it was
	// published with. 0 means 24h.
	DedupeTTL time.Duration
	// BufferSize is each subscriber's queue of undelivered items. A live
	// subscriber whose queue is full is dropped with ErrSlowConsumer (the
	// publisher and the hub never wait for it). 0 means 256. Memory for it
	// is taken only while items are queued, so a large value costs idle
	// subscribers nothing.
	BufferSize int
	// StallTimeout: while catching up, delivery waits for the consumer to
	// make room (history can exceed BufferSize); a consumer that takes no
	// item for this long is dropped with ErrSlowConsumer. 0 means 30s.
	StallTimeout time.Duration
	// ReadChunk is how many events one stream read (XRANGE COUNT) fetches
	// while catching up. 0 means 256.
	ReadChunk int
	// ProbeInterval is how often a probe message is published on the node's
	// probe channel through each pub/sub connection. 0 means 2s.
	ProbeInterval time.Duration
	// ProbeTimeout: a probe not received back within it marks the pub/sub
	// connection dead; it is replaced and every local subscriber re-reads
	// from its last ID. 0 means ProbeInterval.
	ProbeTimeout time.Duration
	// SubscribeTimeout bounds waiting for Redis to confirm a (S)SUBSCRIBE.
	// 0 means 5s.
	SubscribeTimeout time.Duration
	// DownAfter: a pub/sub connection that cannot be re-established for
	// this long ends the subscriptions of its topics with ErrUnavailable,
	// and Subscribe on it fails at once with ErrUnavailable until it is
	// back, so a node cut off from Redis sends its clients to nodes that
	// have it instead of holding them silent. 0 means 3s; negative means
	// never (subscriptions wait for Redis however long it takes).
	DownAfter time.Duration
	// PositionCheck bounds how long a durable event whose pub/sub notice
	// was lost can stay undelivered when no later event of its topic
	// follows: every PositionCheck/2 the node reads the last stream ID of
	// every topic with local listeners (one pipelined read) and sends a
	// listener that has not delivered the previous reading back to read
	// the stream. 0 means 2s; negative disables the check (a lost notice is
	// then recovered only by the topic's next event or a reconnect).
	PositionCheck time.Duration
	// ArchiveMarks: mark the topic in the archive's dirty-topic index
	// (DirtyKey) before every durable publish, so the archive's consumer
	// (archive/archiveredis) finds every topic with unarchived events. Set
	// it when an archive consumes the feeds; a mark that cannot be written
	// fails the publish (nothing is published unmarked).
	ArchiveMarks bool
	// Prefix starts every key and channel of the feed (streams, live
	// channels, dedupe keys, probes, the archive's dirty index): the
	// deployment's HEXTRACK_KEY_PREFIX, so several deployments (or test
	// runs) share one Redis without meeting. It must not contain braces.
	Prefix string
	// ArchiveGrace is how long after its mark a publish may still land:
	// the mark's score is the Redis time plus ArchiveGrace, and the consumer
	// removes a topic only once that time has passed before it read the
	// stream. 0 means 15s. It must exceed the longest delay between
	// PublishParams and the domain script running.
	ArchiveGrace time.Duration
	// NodeID names this node's probe channel. "" means a random ID.
	NodeID string
	// Registerer receives the broker's Prometheus collectors; nil means they
	// are not registered. Collectors already registered (a second broker on
	// the same registry) are shared.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxLen == 0 {
		c.MaxLen = 10_000
	}
	if c.MaxAge == 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.DedupeTTL <= 0 {
		c.DedupeTTL = 24 * time.Hour
	}
	if c.BufferSize <= 0 {
		c.BufferSize = 256
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 30 * time.Second
	}
	if c.ReadChunk <= 0 {
		c.ReadChunk = 256
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 2 * time.Second
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = c.ProbeInterval
	}
	if c.SubscribeTimeout <= 0 {
		c.SubscribeTimeout = 5 * time.Second
	}
	if c.DownAfter == 0 {
		c.DownAfter = 3 * time.Second
	}
	if c.PositionCheck == 0 {
		c.PositionCheck = 2 * time.Second
	}
	if c.ArchiveGrace <= 0 {
		c.ArchiveGrace = 15 * time.Second
	}
	if c.NodeID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.NodeID = hex.EncodeToString(b[:])
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
