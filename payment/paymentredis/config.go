package paymentredis

import (
	"log/slog"
	"strings"
	"time"
)

// Config configures Service. Zero values are documented per field.
type Config struct {
	// GatewayURL is the base URL of the payment gateway's checkout pages;
	// a payment's checkout URL is <GatewayURL>/checkout/<payment id>?….
	// Zero: "http://localhost:8090" (drivesim gateway's default).
	GatewayURL string
	// Currency of every payment (ISO 4217). Zero: "EUR".
	Currency string
	// BaseFare and PerKm price a delivery in minor units (cents): BaseFare
	// + PerKm × straight-line km from pickup to dropoff. Zero: 250 and 120.
	BaseFare, PerKm int64
	// Secrets verify webhook signatures; any one matching is enough, so a
	// secret is rotated by configuring the new one beside the old one until
	// the gateway signs with the new one. Empty: every webhook gets 401.
	Secrets [][]byte
	// Tolerance is the largest distance of a signature's timestamp from now
	// (either way) before it counts as a replay. Zero: 5 minutes.
	Tolerance time.Duration
	// CacheSize bounds the in-process cache of final payments (they never
	// change, so polls of them need no Redis read). Zero: 10,000.
	CacheSize int
	// Prefix is prepended to every Redis key; it must be the trip
	// service's. Zero: "".
	Prefix string
	// TTL is how long a payment's keys live after the last write; it
	// should be the trips' (trip.Config.TripTTL). Zero: 7 days.
	TTL time.Duration
	// Now returns the current time. Zero: time.Now.
	Now func() time.Time
	// Logger. Zero: slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.GatewayURL == "" {
		c.GatewayURL = "http://localhost:8090"
	}
	c.GatewayURL = strings.TrimRight(c.GatewayURL, "/")
	if c.Currency == "" {
		c.Currency = "EUR"
	}
	if c.BaseFare <= 0 {
		c.BaseFare = 250
	}
	if c.PerKm <= 0 {
		c.PerKm = 120
	}
	if c.Tolerance <= 0 {
		c.Tolerance = 5 * time.Minute
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 10000
	}
	if c.TTL <= 0 {
		c.TTL = 7 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
