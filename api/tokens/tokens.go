package tokens

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Roles a token may carry.
const (
	RoleDriver = "driver"
	RoleRider  = "rider"
	RoleOps    = "ops"
	RoleViewer = "viewer"
	// RoleService is a backend service calling with an API key
	// (Authorization: Bearer hx_…); what it may do is its Scopes.
	RoleService = "service"
)

// Claims are hextrack's JWT claims.
type Claims struct {
	Role string `json:"role"`
	// Trip scopes a viewer token to one trip.
	Trip string `json:"trip,omitempty"`
	// Scopes are an API key's grants (trips:read, webhooks:manage, ops);
	// only service callers have them.
	Scopes []string `json:"scopes,omitempty"`
	jwt.RegisteredClaims
}

// Auth mints and verifies HS256 tokens with one secret.
type Auth struct {
	secret []byte
	now    func() time.Time

	// verified caches the claims of tokens whose signature and claims
	// were checked, keyed by the exact token string, so that a client
	// polling with the same token doesn't pay an HMAC and a JSON decode per
	// request. Only successes are cached; a hit is still refused once past
	// its exp or before its nbf (re-parsed for the error). Bounded: when full, an arbitrary
	// entry goes.
	mu       sync.RWMutex
	verified map[string]Claims
}

// maxVerified bounds Auth's cache of verified tokens (~0.5 KiB each).
const maxVerified = 4096

// NewAuth returns an Auth using secret.
func NewAuth(secret []byte) *Auth {
	return &Auth{secret: secret, now: time.Now, verified: make(map[string]Claims)}
}

// Request describes a token to mint.
type Request struct {
	Role string
	Sub  string
	TTL  time.Duration
	Trip string // viewer tokens only
	ID   string // jti, for revocation
}

// Mint returns a signed token.
func (a *Auth) Mint(r Request) (string, error) {
	if !slices.Contains([]string{RoleDriver, RoleRider, RoleOps, RoleViewer}, r.Role) {
		return "", fmt.Errorf("role must be driver, rider, ops or viewer")
	}
	if r.Sub == "" {
		return "", fmt.Errorf("sub is required")
	}
	if r.TTL <= 0 || r.TTL > 30*24*time.Hour {
		return "", fmt.Errorf("ttl must be within (0, 720h]")
	}
	if r.Role == RoleViewer && r.Trip == "" {
		return "", fmt.Errorf("viewer tokens need a trip")
	}
	now := a.now()
	c := Claims{Role: r.Role, Trip: r.Trip, RegisteredClaims: jwt.RegisteredClaims{
		Subject: r.Sub, ID: r.ID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(r.TTL)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
}

// Parse verifies a token (HS256 only, exp required) and returns its claims
// (the caller's own copy).
func (a *Auth) Parse(token string) (*Claims, error) {
	c := new(Claims)
	if err := a.Verify(token, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Verify is Parse writing the claims into *into (the caller's storage, so
// that a middleware keeps them without another allocation).
func (a *Auth) Verify(token string, into *Claims) error {
	a.mu.RLock() // concurrent pollers don't queue behind each other
	c, ok := a.verified[token]
	a.mu.RUnlock()
	if ok {
		now := a.now()
		if now.Before(c.ExpiresAt.Time) && (c.NotBefore == nil || !now.Before(c.NotBefore.Time)) {
			*into = c
			return nil
		}
	}
	cl, err := a.parse(token)
	if err != nil {
		if ok {
			a.mu.Lock()
			delete(a.verified, token)
			a.mu.Unlock()
		}
		return err
	}
	a.mu.Lock()
	if len(a.verified) >= maxVerified {
		for k := range a.verified {
			delete(a.verified, k)
			break
		}
	}
	a.verified[token] = *cl
	a.mu.Unlock()
	*into = *cl
	return nil
}

// parse is Parse without the cache.
func (a *Auth) parse(token string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		return a.secret, nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(a.now))
	if err != nil {
		return nil, err
	}
	if c.Subject == "" || !slices.Contains([]string{RoleDriver, RoleRider, RoleOps, RoleViewer}, c.Role) {
		return nil, errors.New("token lacks sub or a known role")
	}
	return &c, nil
}
