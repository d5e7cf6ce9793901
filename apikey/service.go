package apikey

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/archive"
)

// Store keeps API keys (archive/sqlstore.Store implements it).
type Store interface {
	CreateAPIKey(ctx context.Context, k archive.APIKey) error
	APIKeys(ctx context.Context) ([]archive.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
}

// Service creates, lists and revokes API keys: what `hextrack apikey` and
// the /v1/apikeys routes call.
type Service struct {
	store Store
	// forget, if set, drops a revoked key from this node's Verifier at once.
	forget func(id string)
	now    func() time.Time
}

// NewService returns a Service over store. v, if not nil, is this node's
// Verifier: a key revoked through the Service stops working on this node
// at once (on other nodes within their cache TTL).
func NewService(store Store, v *Verifier) *Service {
	s := &Service{store: store, now: time.Now}
	if v != nil {
		s.forget = v.Forget
	}
	return s
}

// CreateRequest is what a new key is made of.
type CreateRequest struct {
	// Name says whose key it is: 1-200 bytes of UTF-8.
	Name string `json:"name"`
	// Scopes are its grants, at least one of tokens.KnownScopes.
	Scopes []string `json:"scopes"`
	// ExpiresIn is how long the key lasts: a Go duration ("720h") or days
	// ("90d"), at most 3650d. Empty: it never expires.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// Created is a new key and its token: the only time the token is shown.
type Created struct {
	Key   Key    `json:"key"`
	Token string `json:"token"`
}

// maxTTL bounds a key's lifetime: long-lived, not forever by accident.
const maxTTL = 3650 * 24 * time.Hour

// Create makes a key. ErrInvalid or ErrInvalidScope for a bad request.
func (s *Service) Create(ctx context.Context, r CreateRequest) (Created, error) {
	scopes, err := CheckScopes(r.Scopes)
	if err != nil {
		return Created{}, err
	}
	name := strings.TrimSpace(r.Name)
	if name == "" || len(name) > 200 || !utf8.ValidString(name) {
		return Created{}, fmt.Errorf("%w: name must be 1-200 bytes of UTF-8", ErrInvalid)
	}
	ttl, err := ParseTTL(r.ExpiresIn)
	if err != nil {
		return Created{}, err
	}
	id, token, hash, err := newToken()
	if err != nil {
		return Created{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond) // as the archive keeps it
	k := archive.APIKey{ID: id, Name: name, Hash: hash, Scopes: scopes, CreatedAt: now}
	if ttl > 0 {
		k.ExpiresAt = now.Add(ttl)
	}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return Created{}, unavailable(err)
	}
	return Created{Key: view(k, now), Token: token}, nil
}

// List returns every key, newest first (revoked and expired ones too).
func (s *Service) List(ctx context.Context) ([]Key, error) {
	ks, err := s.store.APIKeys(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	now := s.now()
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = view(k, now)
	}
	return out, nil
}

// Revoke revokes key id (again: no change). ErrNotFound if there is none.
func (s *Service) Revoke(ctx context.Context, id string) error {
	if !archive.ValidID(id) {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	err := s.store.RevokeAPIKey(ctx, id, s.now())
	if errors.Is(err, archive.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return unavailable(err)
	}
	if s.forget != nil {
		s.forget(id)
	}
	return nil
}

// CheckScopes returns scopes sorted without duplicates; ErrInvalidScope
// naming the first unknown one, ErrInvalid when there is none.
func CheckScopes(scopes []string) ([]string, error) {
	var out []string
	for _, sc := range scopes {
		sc = strings.TrimSpace(sc)
		if !tokens.KnownScope(sc) {
			return nil, fmt.Errorf("%w %q: known scopes are %s", ErrInvalidScope, sc, strings.Join(tokens.KnownScopes(), ", "))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: at least one scope (%s)", ErrInvalid, strings.Join(tokens.KnownScopes(), ", "))
	}
	slices.Sort(out)
	return out, nil
}

// ParseTTL reads a key's lifetime: "" (none), a Go duration ("720h") or a
// number of days ("90d"); positive and at most 3650 days.
func ParseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return 0, fmt.Errorf("%w: expiry %q: want a duration like 90d or 720h, at most 3650d", ErrInvalid, s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%w: expiry %q: want a duration like 90d or 720h, at most 3650d", ErrInvalid, s)
		}
	}
	if d <= 0 || d > maxTTL {
		return 0, fmt.Errorf("%w: expiry %q: must be positive and at most 3650d", ErrInvalid, s)
	}
	return d, nil
}

// unavailable wraps a store failure (the database not answering) as
// ErrUnavailable, keeping its text for the logs.
func unavailable(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
