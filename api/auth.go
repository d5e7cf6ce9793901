package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/apikey"
)

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
// and stores the claims. A token starting hx_ is an API key, checked by
// keys (only from the Authorization header: a long-lived key must not end
// up in URLs and logs). Routes without a token get no claims;
// caller.Require decides whether that is allowed.
func authenticate(a *tokens.Auth, keys Keys) echo.MiddlewareFunc {
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
			ac := &caller.Context{Context: c}
			if apikey.IsKey(tok) {
				if err := verifyKey(c, keys, tok, &ac.Claims); err != nil {
					return err
				}
				return next(ac)
			}
			if err := a.Verify(tok, &ac.Claims); err != nil {
				return fmt.Errorf("%w: %s", ErrUnauthorized, tokenProblem(err))
			}
			return next(ac)
		}
	}
}

// verifyKey checks an API key (apikey's errors pass to the error table).
func verifyKey(c echo.Context, keys Keys, tok string, into *tokens.Claims) error {
	switch {
	case c.Request().Header.Get(echo.HeaderAuthorization) == "":
		return fmt.Errorf("%w: send API keys as Authorization: Bearer hx_…, never in the URL", ErrUnauthorized)
	case keys == nil:
		return fmt.Errorf("%w: this node accepts no API keys", ErrUnauthorized)
	}
	return keys.Verify(c.Request().Context(), tok, into)
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
func claims(c echo.Context) *tokens.Claims { return caller.From(c) }

// guard is caller.Guard: h for callers of one of roles.
func guard(h echo.HandlerFunc, roles ...string) echo.HandlerFunc { return caller.Guard(h, roles...) }

// tokenExpiry is when cl's token expires; zero when it has none.
func tokenExpiry(cl *tokens.Claims) time.Time {
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
	if cl.Role == tokens.RoleOps {
		return nil
	}
	if cl.Role != tokens.RoleDriver || cl.Subject != c.Param("id") {
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
	auth *tokens.Auth
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
	tok, err := dt.auth.Mint(tokens.Request{Role: r.Role, Sub: r.Sub, TTL: ttl, Trip: r.Trip})
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: err.Error()}
	}
	return c.JSON(http.StatusOK, map[string]string{"token": tok})
}
