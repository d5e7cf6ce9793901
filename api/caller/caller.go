package caller

import (
	"errors"
	"fmt"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/tokens"
)

// Errors of authentication (401) and authorization (403).
var (
	ErrUnauthorized = errors.New("missing, invalid or expired token")
	ErrForbidden    = errors.New("not allowed for this token")
)

// Context is the echo.Context of an authenticated request: the claims
// travel with the context that the authenticating middleware passes down
// the chain, one allocation per request instead of echo's per-request
// store map (c.Set) plus a copy of the claims. Middlewares after it pass
// it on unwrapped.
type Context struct {
	echo.Context
	Claims tokens.Claims
}

// From returns the caller's claims, or nil for a request without a token.
func From(c echo.Context) *tokens.Claims {
	if ac, ok := c.(*Context); ok {
		return &ac.Claims
	}
	return nil
}

// Require is route middleware: a token is required and its role must be
// one of roles.
func Require(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			cl := From(c)
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

// Guard is Require applied to h once, at route registration (route
// middleware given to echo is applied on every request).
func Guard(h echo.HandlerFunc, roles ...string) echo.HandlerFunc {
	return Require(roles...)(h)
}

// ScopeOps is the API-key scope that stands for the ops role (the scopes
// are defined in api/tokens).
const ScopeOps = tokens.ScopeOps

// Allowed reports whether cl may do what scope names: ops always; a
// service when its key holds scope or ScopeOps; nobody else.
func Allowed(cl *tokens.Claims, scope string) bool {
	switch {
	case cl == nil:
		return false
	case cl.Role == tokens.RoleOps:
		return true
	case cl.Role == tokens.RoleService:
		return slices.Contains(cl.Scopes, scope) || slices.Contains(cl.Scopes, ScopeOps)
	}
	return false
}

// RequireScope is route middleware for what ops and service callers share:
// an ops token, or an API key holding scope (see Allowed).
func RequireScope(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			cl := From(c)
			if cl == nil {
				return fmt.Errorf("%w: a bearer token or API key is required", ErrUnauthorized)
			}
			if !Allowed(cl, scope) {
				return fmt.Errorf("%w: needs the %s scope", ErrForbidden, scope)
			}
			return next(c)
		}
	}
}

// GuardScope is Guard for routes that API keys may call too: h for a token
// of one of roles, or for a service whose key holds scope (or ops). Ops
// tokens pass only when roles names ops.
func GuardScope(h echo.HandlerFunc, scope string, roles ...string) echo.HandlerFunc {
	return func(c echo.Context) error {
		cl := From(c)
		if cl == nil {
			return fmt.Errorf("%w: a bearer token or API key is required", ErrUnauthorized)
		}
		if cl.Role == tokens.RoleService {
			if !Allowed(cl, scope) {
				return fmt.Errorf("%w: this API key needs the %s scope", ErrForbidden, scope)
			}
			return h(c)
		}
		if !slices.Contains(roles, cl.Role) {
			return fmt.Errorf("%w: role %s may not call this route", ErrForbidden, cl.Role)
		}
		return h(c)
	}
}

// OpsOnly guards the routes of an ops-only service: each handler is
// called for ops tokens and for API keys holding the ops scope, once
// ready returns nil (ready's error, e.g. "not served by this node", is
// returned otherwise).
func OpsOnly(ready func() error) func(echo.HandlerFunc) echo.HandlerFunc {
	return func(h echo.HandlerFunc) echo.HandlerFunc {
		return GuardScope(func(c echo.Context) error {
			if err := ready(); err != nil {
				return err
			}
			return h(c)
		}, tokens.ScopeOps, tokens.RoleOps)
	}
}
