package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config is the server configuration, filled once from flags and env.
type Config struct {
	Addr        string        // HEXTRACK_ADDR, --addr; default :8080
	RedisURL    string        // HEXTRACK_REDIS_URL, --redis; empty: embedded
	JWTSecret   string        // HEXTRACK_JWT_SECRET(_FILE); dev: random
	Dev         bool          // --dev (implied by the embedded Redis)
	Prefix      string        // HEXTRACK_KEY_PREFIX: prefix of every Redis key
	Stale       time.Duration // HEXTRACK_STALE: driver staleness, default 30s
	TrimEvery   time.Duration // HEXTRACK_TRIM_EVERY: index trim period, default 30s
	MaxFuture   time.Duration // HEXTRACK_MAX_FUTURE: ping ts ahead, default 30s
	MaxAge      time.Duration // HEXTRACK_MAX_AGE: ping ts age, default 24h
	MaxJump     float64       // HEXTRACK_MAX_JUMP_SPEED: m/s, default 70
	MaxBatch    int           // HEXTRACK_MAX_BATCH: pings per request, default 500
	MapFile     string        // HEXTRACK_MAP: OSM PBF for roads and routing
	DrainWindow time.Duration // HEXTRACK_DRAIN_WINDOW: reconnect spread on shutdown, default 5s
	LogLevel    string        // HEXTRACK_LOG_LEVEL: debug|info|warn|error, default info
	// Dispatch and the driver WebSocket (zero: the rider/api defaults).
	OfferTimeout    time.Duration // HEXTRACK_OFFER_TIMEOUT: default 15s
	DispatchTimeout time.Duration // HEXTRACK_DISPATCH_TIMEOUT: default 2m
	LeaseTTL        time.Duration // HEXTRACK_DISPATCH_LEASE: default 5s
	WSOrigins       []string      // HEXTRACK_WS_ORIGINS: comma-separated browser origins allowed on the driver WebSocket
	// Online payments of deliveries (payments.go).
	Payment PaymentSettings // HEXTRACK_PAYMENT_*: webhook secrets, gateway URL, currency
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

// parseServe reads the serve flags (env vars give their defaults).
func parseServe(args []string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", envOr("HEXTRACK_ADDR", ":8080"), "listen address (HEXTRACK_ADDR)")
	fs.StringVar(&c.RedisURL, "redis", os.Getenv("HEXTRACK_REDIS_URL"), "Redis URL; empty: embedded in-memory (HEXTRACK_REDIS_URL)")
	fs.BoolVar(&c.Dev, "dev", os.Getenv("HEXTRACK_DEV") == "1", "dev mode: random secret unless set, POST /v1/dev/token enabled")
	fs.StringVar(&c.Prefix, "key-prefix", os.Getenv("HEXTRACK_KEY_PREFIX"), "prefix of every Redis key (HEXTRACK_KEY_PREFIX)")
	fs.DurationVar(&c.Stale, "stale", envDur("HEXTRACK_STALE", 30*time.Second), "driver staleness (HEXTRACK_STALE)")
	fs.DurationVar(&c.TrimEvery, "trim-every", envDur("HEXTRACK_TRIM_EVERY", 30*time.Second), "index trim period (HEXTRACK_TRIM_EVERY)")
	fs.DurationVar(&c.MaxFuture, "max-future", envDur("HEXTRACK_MAX_FUTURE", 30*time.Second), "ping ts may be this far ahead (HEXTRACK_MAX_FUTURE)")
	fs.DurationVar(&c.MaxAge, "max-age", envDur("HEXTRACK_MAX_AGE", 24*time.Hour), "ping ts may be this old (HEXTRACK_MAX_AGE)")
	fs.Float64Var(&c.MaxJump, "max-jump-speed", 70, "fastest plausible implied speed, m/s (HEXTRACK_MAX_JUMP_SPEED)")
	fs.IntVar(&c.MaxBatch, "max-batch", 500, "most pings per request (HEXTRACK_MAX_BATCH)")
	fs.StringVar(&c.MapFile, "map", os.Getenv("HEXTRACK_MAP"), "OpenStreetMap PBF for roads and routing (HEXTRACK_MAP)")
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
	origins := fs.String("ws-origins", os.Getenv("HEXTRACK_WS_ORIGINS"), "browser origins allowed on the driver WebSocket besides this host, comma-separated (HEXTRACK_WS_ORIGINS)")
	if err := paymentFlags(fs, &c.Payment); err != nil {
		return c, err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.WSOrigins = append(c.WSOrigins, o)
		}
	}
	secret, err := readSecret("HEXTRACK_JWT_SECRET")
	if err != nil {
		return c, err
	}
	c.JWTSecret = secret
	if c.RedisURL == "" {
		c.Dev = true
	}
	return c, nil
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
// in dev mode when none is set.
func (c *Config) checkSecret() error {
	if c.JWTSecret == "" && c.Dev {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		c.JWTSecret = hex.EncodeToString(b)
		return nil
	}
	if len(c.JWTSecret) < 32 || strings.Contains(strings.ToLower(c.JWTSecret), "changeme") ||
		strings.Contains(strings.ToLower(c.JWTSecret), "secret") {
		if c.Dev {
			return nil
		}
		return errors.New("HEXTRACK_JWT_SECRET must be set to at least 32 random characters outside dev mode")
	}
	return nil
}
