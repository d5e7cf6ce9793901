package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/webhook"
	"github.com/hextrack/hextrack/zone"
)

// Config is the server configuration, filled once from flags and env.
type Config struct {
	Addr      string // HEXTRACK_ADDR, --addr; default :8080
	RedisURL  string // HEXTRACK_REDIS_URL, --redis; empty: embedded
	JWTSecret string // HEXTRACK_JWT_SECRET(_FILE); dev: <DataDir>/jwt-secret, else random
	// The archive (archive.go). DatabaseURL "postgres://…": PostgreSQL;
	// empty: the SQLite file <DataDir>/archive.db. Both empty: no archive
	// and nothing kept on disk (what the tests' Main does).
	DatabaseURL string // HEXTRACK_DATABASE_URL(_FILE), --database-url
	DataDir     string // HEXTRACK_DATA_DIR, --data-dir; default defaultDataDir() (datadir.go)
	// ArchiveRetention: how long the archive keeps raw events, trail
	// points and driver status history (trips and the ledger are kept);
	// HEXTRACK_ARCHIVE_RETENTION, --archive-retention; default 90 days;
	// negative: kept forever.
	ArchiveRetention time.Duration
	Dev              bool          // --dev (implied by the embedded Redis)
	Prefix           string        // HEXTRACK_KEY_PREFIX: prefix of every Redis key
	Stale            time.Duration // HEXTRACK_STALE: driver staleness, default 30s
	TrimEvery        time.Duration // HEXTRACK_TRIM_EVERY: index trim period, default 30s
	MaxFuture        time.Duration // HEXTRACK_MAX_FUTURE: ping ts ahead, default 30s
	MaxAge           time.Duration // HEXTRACK_MAX_AGE: ping ts age, default 24h
	MaxJump          float64       // HEXTRACK_MAX_JUMP_SPEED: m/s, default 70
	MaxBatch         int           // HEXTRACK_MAX_BATCH: pings per request, default 500
	MapFile          string        // HEXTRACK_MAP: OSM PBF for roads and routing
	DrainWindow      time.Duration // HEXTRACK_DRAIN_WINDOW: reconnect spread on shutdown, default 5s
	LogLevel         string        // HEXTRACK_LOG_LEVEL: debug|info|warn|error, default info
	// Dispatch and the driver WebSocket (zero: the dispatch/api defaults).
	OfferTimeout    time.Duration // HEXTRACK_OFFER_TIMEOUT: default 15s
	DispatchTimeout time.Duration // HEXTRACK_DISPATCH_TIMEOUT: default 2m
	LeaseTTL        time.Duration // HEXTRACK_DISPATCH_LEASE: default 5s
	WSOrigins       []string      // HEXTRACK_WS_ORIGINS: comma-separated browser origins allowed on the driver WebSocket
	// Zones (zones.go): limits and the default dwell delay.
	Zones zone.Config // HEXTRACK_ZONE_MAX_VERTICES, HEXTRACK_ZONE_MAX_AREA_KM2, HEXTRACK_ZONE_DWELL
	// Proof of delivery (pod.go): where photos and signatures are kept
	// (empty: <DataDir>/pod; neither: no proofs) and their size limits in
	// bytes (0: 5 MiB and 512 KiB).
	PodDir          string // HEXTRACK_POD_DIR, --pod-dir
	PodMaxPhoto     int64  // HEXTRACK_POD_MAX_PHOTO, --pod-max-photo
	PodMaxSignature int64  // HEXTRACK_POD_MAX_SIGNATURE, --pod-max-signature
	// Stops (stops.go): the completion geotag radius, arrival thresholds.
	Stops StopSettings // HEXTRACK_STOP_*
	// Online payments of deliveries (payments.go).
	Payment PaymentSettings // HEXTRACK_PAYMENT_*: webhook secrets, gateway URL, currency
	// Abuse resistance (zero: the driver/api defaults; a negative rate: off).
	CORSOrigins    []string      // HEXTRACK_CORS_ORIGINS: browser origins allowed by CORS and on the driver WebSocket
	TrustedProxies []string      // HEXTRACK_TRUSTED_PROXIES: CIDRs whose X-Forwarded-For names the client
	HSTSMaxAge     int           // HEXTRACK_HSTS_MAX_AGE: seconds; 0: no Strict-Transport-Security
	PingRate       float64       // HEXTRACK_PING_RATE: pings/s per driver, default 10
	PingBurst      int           // HEXTRACK_PING_BURST: default 2×max batch (never below it)
	ActionRate     float64       // HEXTRACK_ACTION_RATE: actions/s per token subject, default 5
	ActionBurst    int           // HEXTRACK_ACTION_BURST: default 30
	IPActionRate   float64       // HEXTRACK_IP_ACTION_RATE: actions/s per client IP per node, default 20
	IPActionBurst  int           // HEXTRACK_IP_ACTION_BURST: default 100
	IPStreamRate   float64       // HEXTRACK_IP_STREAM_RATE: new SSE/WS per client IP per node, default 5/s
	IPStreamBurst  int           // HEXTRACK_IP_STREAM_BURST: default 50
	StreamRate     float64       // HEXTRACK_STREAM_RATE: new streams/s admitted per node, default 500
	StreamBurst    int           // HEXTRACK_STREAM_BURST: default 500
	MaxStreams     int           // HEXTRACK_MAX_STREAMS: open streams per node, default 15000
	RetrySpread    time.Duration // HEXTRACK_RETRY_SPREAD: jitter of Retry-After on 503, default 10s
	// Feeds (feedredis.Config).
	FeedPositionCheck time.Duration // HEXTRACK_FEED_POSITION_CHECK: longest a durable event whose notice was lost waits, default 2s; negative: off
	// Polling (api.Config.PollCacheTTL).
	PollCacheTTL time.Duration // HEXTRACK_POLL_CACHE_TTL: longest a 304 may hide a change made elsewhere, default 100ms; negative: off
	// ETA model (eta.go): the file eta-train wrote and eta-eval scored.
	ETAModel string // HEXTRACK_ETA_MODEL: empty: speeds learned online from pings, no learned correction
	// Training the ETA model from the archive (eta.go, eta/etalearn):
	// ETATrainEvery is the period (at start, then every; ≤ 0: off; off
	// without an archive), ETAModelDir keeps the installed and the
	// previous model (empty: <DataDir>/eta-models; no DataDir: memory
	// only), ETATZ the time zone of time-of-day features.
	ETATrainEvery time.Duration
	ETAModelDir   string
	ETATZ         string
	// The NATS JetStream export of the archived events (natsexport.go).
	NATSURL    string // HEXTRACK_NATS_URL(_FILE), --nats-url; empty: no export
	NATSStream string // HEXTRACK_NATS_STREAM, --nats-stream; default HEXTRACK
	NATSPrefix string // HEXTRACK_NATS_SUBJECT_PREFIX, --nats-subject-prefix; default hextrack
	// Outbound webhooks (webhooks.go): hosts trusted although loopback or
	// private (HEXTRACK_WEBHOOK_ALLOW_HOSTS, --webhook-allow-hosts).
	WebhookAllowHosts []string
	// WebhookPauseAfter pauses an endpoint whose every attempt failed
	// this long (HEXTRACK_WEBHOOK_PAUSE_AFTER, --webhook-pause-after).
	WebhookPauseAfter time.Duration
}

// envOr returns env var name, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v := os.Getenv(name); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return def
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, o := range strings.Split(v, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// limitFlags registers the rate-limit, CORS and proxy flags.
func limitFlags(fs *flag.FlagSet, c *Config) (cors, proxies *string) {
	cors = fs.String("cors-origins", os.Getenv("HEXTRACK_CORS_ORIGINS"), "browser origins allowed by CORS and on the driver WebSocket, comma-separated; * for any (HEXTRACK_CORS_ORIGINS)")
	proxies = fs.String("trusted-proxies", os.Getenv("HEXTRACK_TRUSTED_PROXIES"), "CIDRs of proxies whose X-Forwarded-For is trusted, comma-separated (HEXTRACK_TRUSTED_PROXIES)")
	fs.IntVar(&c.HSTSMaxAge, "hsts-max-age", envInt("HEXTRACK_HSTS_MAX_AGE", 0), "Strict-Transport-Security max-age on HTTPS, seconds; 0: off (HEXTRACK_HSTS_MAX_AGE)")
	fs.Float64Var(&c.PingRate, "ping-rate", envFloat("HEXTRACK_PING_RATE", 10), "sustained pings/s per driver, across nodes; negative: no limit (HEXTRACK_PING_RATE)")
	fs.IntVar(&c.PingBurst, "ping-burst", envInt("HEXTRACK_PING_BURST", 0), "ping bucket size; 0: 2×max batch; never below the max batch (HEXTRACK_PING_BURST)")
	fs.Float64Var(&c.ActionRate, "action-rate", envFloat("HEXTRACK_ACTION_RATE", 5), "POST/PUT/DELETE per token subject per second, across nodes; negative: off (HEXTRACK_ACTION_RATE)")
	fs.IntVar(&c.ActionBurst, "action-burst", envInt("HEXTRACK_ACTION_BURST", 30), "burst of actions per subject (HEXTRACK_ACTION_BURST)")
	fs.Float64Var(&c.IPActionRate, "ip-action-rate", envFloat("HEXTRACK_IP_ACTION_RATE", 20), "POST/PUT/DELETE per client IP per second on a node; negative: off (HEXTRACK_IP_ACTION_RATE)")
	fs.IntVar(&c.IPActionBurst, "ip-action-burst", envInt("HEXTRACK_IP_ACTION_BURST", 100), "burst of actions per IP (HEXTRACK_IP_ACTION_BURST)")
	fs.Float64Var(&c.IPStreamRate, "ip-stream-rate", envFloat("HEXTRACK_IP_STREAM_RATE", 5), "new SSE/WebSocket connections per client IP per second on a node; negative: off (HEXTRACK_IP_STREAM_RATE)")
	fs.IntVar(&c.IPStreamBurst, "ip-stream-burst", envInt("HEXTRACK_IP_STREAM_BURST", 50), "burst of new streams per IP (HEXTRACK_IP_STREAM_BURST)")
	fs.Float64Var(&c.StreamRate, "stream-rate", envFloat("HEXTRACK_STREAM_RATE", 500), "new streams admitted per second per node, the rest 503 + Retry-After; negative: off (HEXTRACK_STREAM_RATE)")
	fs.IntVar(&c.StreamBurst, "stream-burst", envInt("HEXTRACK_STREAM_BURST", 500), "burst of admitted streams (HEXTRACK_STREAM_BURST)")
	fs.IntVar(&c.MaxStreams, "max-streams", envInt("HEXTRACK_MAX_STREAMS", 15000), "open SSE+WebSocket streams per node; keep below the fd limit (HEXTRACK_MAX_STREAMS)")
	fs.DurationVar(&c.PollCacheTTL, "poll-cache-ttl", envDur("HEXTRACK_POLL_CACHE_TTL", 100*time.Millisecond), "how long a node answers a poll's If-None-Match from a tag it read before, without Redis: the longest a change made elsewhere stays behind a 304; negative: off (HEXTRACK_POLL_CACHE_TTL)")
	fs.DurationVar(&c.FeedPositionCheck, "feed-position-check", envDur("HEXTRACK_FEED_POSITION_CHECK", 2*time.Second), "period of the feed position check: a durable event whose pub/sub notice was lost reaches its subscribers within about this; negative: off (HEXTRACK_FEED_POSITION_CHECK)")
	fs.DurationVar(&c.RetrySpread, "retry-spread", envDur("HEXTRACK_RETRY_SPREAD", 10*time.Second), "random spread of Retry-After on admission 503s (HEXTRACK_RETRY_SPREAD)")
	return cors, proxies
}

// limits is the api.LimitConfig of c.
func (c *Config) limits() api.LimitConfig {
	return api.LimitConfig{SubjectRate: c.ActionRate, SubjectBurst: c.ActionBurst, IPRate: c.IPActionRate, IPBurst: c.IPActionBurst,
		StreamIPRate: c.IPStreamRate, StreamIPBurst: c.IPStreamBurst, StreamRate: c.StreamRate, StreamBurst: c.StreamBurst,
		MaxStreams: c.MaxStreams, RetrySpread: c.RetrySpread, TrustedProxies: c.TrustedProxies}
}

// parseServe reads the serve flags (env vars give their defaults).
func parseServe(args []string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", envOr("HEXTRACK_ADDR", ":8080"), "listen address (HEXTRACK_ADDR)")
	// The Redis URL may carry a password: a secret, so *_FILE works too.
	redisURL, err := readSecret("HEXTRACK_REDIS_URL")
	if err != nil {
		return c, err
	}
	fs.StringVar(&c.RedisURL, "redis", redisURL, "Redis URL; empty: embedded in-memory (HEXTRACK_REDIS_URL or HEXTRACK_REDIS_URL_FILE)")
	fs.BoolVar(&c.Dev, "dev", os.Getenv("HEXTRACK_DEV") == "1", "dev mode: random secret unless set, POST /v1/dev/token enabled")
	fs.StringVar(&c.Prefix, "key-prefix", os.Getenv("HEXTRACK_KEY_PREFIX"), "prefix of every Redis key (HEXTRACK_KEY_PREFIX)")
	fs.DurationVar(&c.Stale, "stale", envDur("HEXTRACK_STALE", 30*time.Second), "driver staleness (HEXTRACK_STALE)")
	fs.DurationVar(&c.TrimEvery, "trim-every", envDur("HEXTRACK_TRIM_EVERY", 30*time.Second), "index trim period (HEXTRACK_TRIM_EVERY)")
	fs.DurationVar(&c.MaxFuture, "max-future", envDur("HEXTRACK_MAX_FUTURE", 30*time.Second), "ping ts may be this far ahead (HEXTRACK_MAX_FUTURE)")
	fs.DurationVar(&c.MaxAge, "max-age", envDur("HEXTRACK_MAX_AGE", 24*time.Hour), "ping ts may be this old (HEXTRACK_MAX_AGE)")
	fs.Float64Var(&c.MaxJump, "max-jump-speed", 70, "fastest plausible implied speed, m/s (HEXTRACK_MAX_JUMP_SPEED)")
	fs.IntVar(&c.MaxBatch, "max-batch", 500, "most pings per request (HEXTRACK_MAX_BATCH)")
	fs.StringVar(&c.MapFile, "map", os.Getenv("HEXTRACK_MAP"), "OpenStreetMap PBF for roads and routing (HEXTRACK_MAP)")
	fs.StringVar(&c.ETAModel, "eta-model", os.Getenv("HEXTRACK_ETA_MODEL"), "ETA model file written by hextrack eta-train, served as eta-eval scored it; empty: speeds learned online, no learned correction (HEXTRACK_ETA_MODEL)")
	fs.DurationVar(&c.ETATrainEvery, "eta-train-every", envDur("HEXTRACK_ETA_TRAIN_EVERY", 6*time.Hour),
		"train the ETA model from the archive's completed trips at start and then this often, installing it when it validates no worse than the served one on the latest trips; 0: off; off without an archive (HEXTRACK_ETA_TRAIN_EVERY)")
	fs.StringVar(&c.ETAModelDir, "eta-model-dir", os.Getenv("HEXTRACK_ETA_MODEL_DIR"),
		"where trained ETA models are kept (current.model, served at start before --eta-model; previous.model, for hextrack eta-model rollback); empty: eta-models in --data-dir (HEXTRACK_ETA_MODEL_DIR)")
	fs.StringVar(&c.ETATZ, "eta-tz", envOr("HEXTRACK_ETA_TZ", "UTC"), "time zone of the ETA model trained from the archive (its time-of-day features), e.g. Europe/Lisbon (HEXTRACK_ETA_TZ)")
	fs.DurationVar(&c.DrainWindow, "drain-window", envDur("HEXTRACK_DRAIN_WINDOW", 5*time.Second), "spread of reconnects on shutdown (HEXTRACK_DRAIN_WINDOW)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("HEXTRACK_LOG_LEVEL", "info"), "debug|info|warn|error (HEXTRACK_LOG_LEVEL)")
	if v := os.Getenv("HEXTRACK_MAX_JUMP_SPEED"); v != "" {
		_, _ = fmt.Sscan(v, &c.MaxJump)
	}
	if v := os.Getenv("HEXTRACK_MAX_BATCH"); v != "" {
		_, _ = fmt.Sscan(v, &c.MaxBatch)
	}
	fs.DurationVar(&c.OfferTimeout, "offer-timeout", envDur("HEXTRACK_OFFER_TIMEOUT", 15*time.Second), "time a driver has to answer an offer (HEXTRACK_OFFER_TIMEOUT)")
	fs.DurationVar(&c.DispatchTimeout, "dispatch-timeout", envDur("HEXTRACK_DISPATCH_TIMEOUT", 2*time.Minute), "a trip nobody accepts expires after this (HEXTRACK_DISPATCH_TIMEOUT)")
	fs.DurationVar(&c.LeaseTTL, "dispatch-lease", envDur("HEXTRACK_DISPATCH_LEASE", 5*time.Second), "a dead node's trips are taken over after this (HEXTRACK_DISPATCH_LEASE)")
	origins := fs.String("ws-origins", os.Getenv("HEXTRACK_WS_ORIGINS"), "browser origins allowed on the driver WebSocket besides this host, comma-separated (HEXTRACK_WS_ORIGINS; prefer --cors-origins, which covers both)")
	if err := archiveFlags(fs, &c); err != nil {
		return c, err
	}
	fs.DurationVar(&c.ArchiveRetention, "archive-retention", envDur("HEXTRACK_ARCHIVE_RETENTION", 90*24*time.Hour),
		"how long the archive keeps raw events, GPS trail points and driver status history, pruned hourly by one node; trips and the payments ledger are kept; negative: forever (HEXTRACK_ARCHIVE_RETENTION)")
	if err := natsFlags(fs, &c); err != nil {
		return c, err
	}
	zoneFlags(fs, &c.Zones)
	podFlags(fs, &c)
	stopFlags(fs, &c.Stops)
	allowHosts := webhookFlags(fs, &c)
	cors, proxies := limitFlags(fs, &c)
	if err := paymentFlags(fs, &c.Payment); err != nil {
		return c, err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.WSOrigins = splitList(*origins)
	c.CORSOrigins = splitList(*cors)
	c.TrustedProxies = splitList(*proxies)
	c.WebhookAllowHosts = splitList(*allowHosts)
	if err := webhook.CheckAllowHosts(c.WebhookAllowHosts); err != nil {
		return c, err
	}
	secret, err := readSecret("HEXTRACK_JWT_SECRET")
	if err != nil {
		return c, err
	}
	c.JWTSecret = secret
	if c.RedisURL == "" {
		c.Dev = true
	}
	if strings.ContainsAny(c.Prefix, "{}") {
		// A brace would become the Cluster hash tag of every key.
		return c, errors.New("HEXTRACK_KEY_PREFIX must not contain { or }")
	}
	return c, checkDatabaseURL(c.DatabaseURL)
}

// etaModelDir is where trained ETA models are kept: --eta-model-dir, else
// eta-models in the data dir ("" without one: in memory only).
func (c *Config) etaModelDir() string {
	if c.ETAModelDir != "" || c.DataDir == "" {
		return c.ETAModelDir
	}
	return filepath.Join(c.DataDir, "eta-models")
}

// archiveFlags registers --database-url and --data-dir (serve and migrate).
func archiveFlags(fs *flag.FlagSet, c *Config) error {
	// A PostgreSQL URL may carry a password: a secret, so *_FILE works too.
	dbURL, err := readSecret("HEXTRACK_DATABASE_URL")
	if err != nil {
		return err
	}
	fs.StringVar(&c.DatabaseURL, "database-url", "", "the archive: postgres://user:pass@host:5432/db?sslmode=…; empty: the SQLite file archive.db in --data-dir (HEXTRACK_DATABASE_URL or HEXTRACK_DATABASE_URL_FILE)")
	c.DatabaseURL = dbURL // the env's value, not shown by --help; the flag overrides it
	dataDir := os.Getenv("HEXTRACK_DATA_DIR")
	if dataDir == "" {
		dataDir = defaultDataDir()
	}
	fs.StringVar(&c.DataDir, "data-dir", dataDir, "directory of the node's state: the SQLite archive (archive.db), proof-of-delivery files (pod) and, in dev mode, the JWT secret (jwt-secret) (HEXTRACK_DATA_DIR)")
	return nil
}

// checkDatabaseURL refuses a URL that is neither PostgreSQL nor SQLite,
// which sqlstore would take for the name of a SQLite file.
func checkDatabaseURL(u string) error {
	if u == "" || isPostgres(u) || strings.HasPrefix(u, "sqlite:") {
		return nil
	}
	return errors.New("HEXTRACK_DATABASE_URL must be a postgres:// (or postgresql://) URL, sqlite:PATH, or empty for the SQLite file in the data directory")
}

// readSecret reads NAME, or the file named by NAME_FILE.
func readSecret(name string) (string, error) {
	if f := os.Getenv(name + "_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return os.Getenv(name), nil
}

// checkSecret enforces a real secret outside dev mode and makes a random one
// in dev mode when none is set (or kept: Config.keptDevSecret).
func (c *Config) checkSecret() error {
	if c.JWTSecret == "" && c.Dev {
		c.JWTSecret = randomSecret()
		return nil
	}
	if weakSecret(c.JWTSecret) && !c.Dev {
		return errors.New("HEXTRACK_JWT_SECRET must be set to at least 32 random characters outside dev mode")
	}
	// Webhook secrets are shared with the payment gateway: outside dev
	// mode each must be long and not the dev mode's well-known one.
	for _, w := range c.Payment.WebhookSecrets {
		if !c.Dev && (len(w) < 24 || w == devWebhookSecret || placeholder(w)) {
			return errors.New("each HEXTRACK_PAYMENT_WEBHOOK_SECRETS entry must be at least 24 characters (the gateway's signing secret) outside dev mode")
		}
	}
	return nil
}

// weakSecret: empty, short, a placeholder (the values in examples and the
// compose file), or with too few distinct characters to be random.
func weakSecret(s string) bool {
	if len(s) < 32 {
		return true
	}
	if placeholder(s) || strings.Contains(strings.ToLower(s), "secret") {
		return true
	}
	distinct := map[rune]bool{}
	for _, r := range s {
		distinct[r] = true
	}
	return len(distinct) < 10
}

// placeholder: a value from an example or a compose default, not a key.
func placeholder(s string) bool {
	l := strings.ToLower(s)
	for _, w := range []string{"changeme", "change-me", "change_me", "replace", "default", "example", "password", "dev-only"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}
