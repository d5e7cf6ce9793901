package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"

	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/archive"
)

// Lookup reads keys for the Verifier and records their use
// (archive/sqlstore.Store implements it).
type Lookup interface {
	APIKey(ctx context.Context, id string) (archive.APIKey, error)
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
}

// VerifierConfig tunes a Verifier. Zero values are documented per field.
type VerifierConfig struct {
	// CacheTTL is how long a key read from the archive is trusted before
	// it is read again: the longest a key revoked on another node keeps
	// working here. Zero: 5s.
	CacheTTL time.Duration
	// TouchEvery is how often at most a key's last-used time is written,
	// per key and node. Zero: 1 minute.
	TouchEvery time.Duration
	// Logger logs failed last-used writes. Nil: slog.Default().
	Logger *slog.Logger
}

// maxCached bounds the Verifier's cache (unknown ids are cached too, so
// that a client retrying a bad key does not reach the archive each time).
const maxCached = 4096

// touchTimeout bounds the last-used write a request makes; lookupTimeout
// a read of a key (shared by the requests waiting for it).
const (
	touchTimeout  = 2 * time.Second
	lookupTimeout = 5 * time.Second
)

// Verifier checks API keys: api's authenticating middleware calls Verify
// for a bearer token that starts with Prefix. Safe for concurrent use.
type Verifier struct {
	look Lookup
	cfg  VerifierConfig
	now  func() time.Time

	// reads shares one archive read of a key among the requests that
	// miss the cache at once (a busy key whose copy just aged out).
	reads singleflight.Group

	mu      sync.Mutex
	forgets uint64 // Forget calls: a read that overlapped one is not cached
	cache   map[string]cached
	touched map[string]time.Time // key id → last write (or attempt) of last_used
}

// cached is what the archive said of a key id, and when it was read.
type cached struct {
	key   archive.APIKey
	found bool
	at    time.Time
}

// NewVerifier returns a Verifier reading keys through look.
func NewVerifier(look Lookup, cfg VerifierConfig) *Verifier {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Second
	}
	if cfg.TouchEvery <= 0 {
		cfg.TouchEvery = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Verifier{look: look, cfg: cfg, now: time.Now, cache: make(map[string]cached), touched: make(map[string]time.Time)}
}

// Verify checks token and writes the service caller's claims into *into:
// Role tokens.RoleService, Subject the key id, Scopes its scopes, and its
// expiry if it has one. ErrRejected (saying why) when the key is
// malformed, unknown, expired or revoked; ErrUnavailable when the archive
// does not answer.
func (v *Verifier) Verify(ctx context.Context, token string, into *tokens.Claims) error {
	id, secret, err := parse(token)
	if err != nil {
		return err
	}
	now := v.now()
	k, found, err := v.lookup(ctx, id, now)
	if err != nil {
		return err
	}
	switch {
	case !found || !secretMatches(secret, k.Hash):
		return fmt.Errorf("%w: unknown API key", ErrRejected)
	case !k.RevokedAt.IsZero():
		return fmt.Errorf("%w: API key %s was revoked", ErrRejected, id)
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return fmt.Errorf("%w: API key %s expired at %s", ErrRejected, id, k.ExpiresAt.UTC().Format(time.RFC3339))
	}
	*into = tokens.Claims{Role: tokens.RoleService, Scopes: slices.Clone(k.Scopes)}
	into.Subject = id
	if !k.ExpiresAt.IsZero() {
		into.ExpiresAt = jwt.NewNumericDate(k.ExpiresAt)
	}
	v.touch(ctx, id, now)
	return nil
}

// lookup is key id from the cache, or from the archive when the cache's
// copy is missing or older than CacheTTL.
func (v *Verifier) lookup(ctx context.Context, id string, now time.Time) (archive.APIKey, bool, error) {
	v.mu.Lock()
	c, ok := v.cache[id]
	forgets := v.forgets
	if ok && now.Sub(c.at) < v.cfg.CacheTTL {
		v.mu.Unlock()
		return c.key, c.found, nil
	}
	v.mu.Unlock()
	r, err, _ := v.reads.Do(id, func() (any, error) {
		// Not the first request's ctx: the others wait on this read too.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		return v.look.APIKey(rctx, id)
	})
	found := err == nil
	if err != nil && !errors.Is(err, archive.ErrNotFound) {
		return archive.APIKey{}, false, unavailable(err)
	}
	k, _ := r.(archive.APIKey)
	v.mu.Lock()
	if v.forgets != forgets { // a revoke here may have raced the read: use it, keep nothing
		v.mu.Unlock()
		return k, found, nil
	}
	if _, ok := v.cache[id]; !ok && len(v.cache) >= maxCached {
		for old := range v.cache {
			delete(v.cache, old)
			break
		}
	}
	v.cache[id] = cached{key: k, found: found, at: now}
	v.mu.Unlock()
	return k, found, nil
}

// touch records the key's use when its last write is TouchEvery old: the
// one request that finds it due writes (bounded by touchTimeout); a
// failure is logged and retried by a later request.
func (v *Verifier) touch(ctx context.Context, id string, now time.Time) {
	v.mu.Lock()
	last, ok := v.touched[id]
	due := !ok || now.Sub(last) >= v.cfg.TouchEvery
	if due {
		if !ok && len(v.touched) >= maxCached {
			for old := range v.touched {
				delete(v.touched, old)
				break
			}
		}
		v.touched[id] = now
	}
	v.mu.Unlock()
	if !due {
		return
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), touchTimeout)
	defer cancel()
	if err := v.look.TouchAPIKey(tctx, id, now); err != nil {
		v.cfg.Logger.Warn("api key: cannot record its last use", "key", id, "err", err)
		v.mu.Lock()
		if v.touched[id].Equal(now) {
			delete(v.touched, id) // due again at the next request
		}
		v.mu.Unlock()
	}
}

// Forget drops key id from the cache: a key revoked on this node stops
// working here at once. A read of any key in flight meanwhile is used by
// the requests that made it but not cached (it may predate the revoke).
func (v *Verifier) Forget(id string) {
	v.mu.Lock()
	delete(v.cache, id)
	v.forgets++
	v.reads.Forget(id) // a read in flight now is not joined by later requests
	v.mu.Unlock()
}
