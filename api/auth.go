package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
)

// Roles a token may carry.
const (
	RoleDriver = "driver"
	RoleRider  = "rider"
	RoleOps    = "ops"
	RoleViewer = "viewer"
)

// Claims are hextrack's JWT claims.
type Claims struct {
	Role string `json:"role"`
	// Trip scopes a viewer token to one trip.
	Trip string `json:"trip,omitempty"`
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

// TokenRequest describes a token to mint.
type TokenRequest struct {
	Role string
	Sub  string
	TTL  time.Duration
	Trip string // viewer tokens only
	ID   string // jti, for revocation
}

// Mint returns a signed token.
func (a *Auth) Mint(r TokenRequest) (string, error) {
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
	if err := a.verify(token, c); err != nil {
		return nil, err
	}
	return c, nil
}

// verify is Parse writing the claims into *into (the caller's storage, so
// that authenticate keeps them without another allocation).
func (a *Auth) verify(token string, into *Claims) error {
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

// authContext is the echo.Context of an authenticated request: the claims
// travel with the context that authenticate passes down the chain, one
// allocation per request instead of echo's per-request store map
// (c.Set) plus a copy of the claims. Middlewares after authenticate pass
// it on unwrapped.
type authContext struct {
	echo.Context
	cl Claims
}

// queryTokenRoutes are the GET routes that accept ?access_token= because
// their browser clients (EventSource, WebSocket, a shared link's first
// snapshot) can't set headers. Anywhere else a token in the URL is ignored
// (it would end up in proxies' logs and histories): send Authorization.
var queryTokenRoutes = map[string]bool{
	"/v1/trips/:id":          true,
	"/v1/trips/:id/events":   true,
	"/v1/drivers/:id/ws":     true,
	"/v1/ops/summary/stream": true,
	"/v1/ops/drivers/stream": true,
}

// authenticate parses the bearer token (or, on the GET routes of
// queryTokenRoutes, ?access_token= since EventSource can't set headers)
// and stores the claims. Routes without a token get no claims;
// requireRole decides whether that is allowed.
func authenticate(a *Auth) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			tok := ""
			if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
				const p = "bearer "
				if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
					return fmt.Errorf("%w: Authorization must be \"Bearer <token>\"", ErrUnauthorized)
				}
				tok = strings.TrimSpace(h[len(p):])
			} else if c.Request().Method == http.MethodGet && queryTokenRoutes[c.Path()] {
				tok = c.QueryParam("access_token")
			}
			if tok == "" {
				return next(c)
			}
			ac := &authContext{Context: c}
			if err := a.verify(tok, &ac.cl); err != nil {
				return fmt.Errorf("%w: %s", ErrUnauthorized, tokenProblem(err))
			}
			return next(ac)
		}
	}
}

func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "unverifiable token"
	}
	return "invalid token"
}

// claims returns the caller's claims or nil.
func claims(c echo.Context) *Claims {
	if ac, ok := c.(*authContext); ok {
		return &ac.cl
	}
	return nil
}

// requireRole is route middleware: a token is required and its role must be
// one of roles.
func requireRole(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			cl := claims(c)
			if cl == nil {
				if c.QueryParam("access_token") != "" {
					return fmt.Errorf("%w: access_token in the URL is accepted only by stream and snapshot routes; send Authorization: Bearer <token>", ErrUnauthorized)
				}
				return fmt.Errorf("%w: a bearer token is required", ErrUnauthorized)
			}
			if !slices.Contains(roles, cl.Role) {
				return fmt.Errorf("%w: role %s may not call this route", ErrForbidden, cl.Role)
			}
			return next(c)
		}
	}
}

// guard is requireRole applied to h once, at route registration (route
// middleware given to echo is applied on every request).
func guard(h echo.HandlerFunc, roles ...string) echo.HandlerFunc {
	return requireRole(roles...)(h)
}

// tokenExpiry is when cl's token expires; zero when it has none.
func tokenExpiry(cl *Claims) time.Time {
	if cl == nil || cl.ExpiresAt == nil {
		return time.Time{}
	}
	return cl.ExpiresAt.Time
}

// selfDriver checks that a driver token acts only for its own id (:id); ops
// may act for any driver.
func selfDriver(c echo.Context) error {
	cl := claims(c)
	if cl == nil {
		return fmt.Errorf("%w: a bearer token is required", ErrUnauthorized)
	}
	if cl.Role == RoleOps {
		return nil
	}
	if cl.Role != RoleDriver || cl.Subject != c.Param("id") {
		return fmt.Errorf("%w: a driver may act only for itself", ErrForbidden)
	}
	return nil
}

type devTokenRequest struct {
	Role string `json:"role"`
	Sub  string `json:"sub"`
	TTL  string `json:"ttl"`
	Trip string `json:"trip"`
}

// devTokens serves POST /v1/dev/token.
type devTokens struct {
	auth *Auth
	on   bool // Config.Dev
}

// devToken mints tokens in dev mode only; otherwise the route is a 404.
func (dt *devTokens) devToken(c echo.Context) error {
	if !dt.on {
		return echo.ErrNotFound
	}
	var r devTokenRequest
	if err := bindJSON(c, &r); err != nil {
		return err
	}
	ttl := time.Hour
	if r.TTL != "" {
		d, err := time.ParseDuration(r.TTL)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "ttl must be a duration like 1h"}
		}
		ttl = d
	}
	tok, err := dt.auth.Mint(TokenRequest{Role: r.Role, Sub: r.Sub, TTL: ttl, Trip: r.Trip})
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: err.Error()}
	}
	return c.JSON(http.StatusOK, map[string]string{"token": tok})
}
