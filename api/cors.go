package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// originAllowed is the one origin rule, shared by CORS and the WebSocket
// origin check: an exact (case-insensitive) match of scheme://host[:port]
// against the allow-list, or "*" in the list.
func originAllowed(list []string, origin string) bool {
	if origin == "" {
		return false
	}
	for _, o := range list {
		if o == "*" || strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	return false
}

// corsMiddleware is echo's CORS middleware over the allow-list. With an
// empty list there is no CORS at all (same-origin only). Tokens are
// bearer headers, never cookies: no credentials mode.
func corsMiddleware(origins []string) echo.MiddlewareFunc {
	if len(origins) == 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) { return originAllowed(origins, origin), nil },
		AllowMethods:    []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete},
		AllowHeaders: []string{echo.HeaderAuthorization, echo.HeaderContentType, "Idempotency-Key",
			"If-Match", "If-None-Match", "Last-Event-ID"},
		ExposeHeaders: []string{"ETag", echo.HeaderLocation, echo.HeaderRetryAfter, "X-Poll-Interval",
			echo.HeaderXRequestID, "Idempotent-Replayed", "X-Map-Source"},
		MaxAge: 600,
	})
}

// secureHeaders does what echo's Secure middleware did here: every
// response (API and pages) says nosniff, no framing, no referrer, and a CSP
// that lets an API response load nothing; HTTPS responses also carry
// Strict-Transport-Security when hstsMaxAge is set. Pages replace the CSP
// with theirs (web.go). The values are built once and assigned under their
// canonical keys: no per-request canonicalisation or allocation. They are
// shared between responses, as Header.Set/Add/Del and Clone never write
// into an existing value slice (full slice expressions keep Add from
// appending into it).
func secureHeaders(hstsMaxAge int) echo.MiddlewareFunc {
	one := func(v string) []string { return []string{v}[:1:1] }
	fixed := []struct {
		key string
		val []string
	}{
		{echo.HeaderXContentTypeOptions, one("nosniff")},
		{echo.HeaderXFrameOptions, one("DENY")},
		{echo.HeaderContentSecurityPolicy, one("default-src 'none'; frame-ancestors 'none'")},
		{echo.HeaderReferrerPolicy, one("no-referrer")},
	}
	for _, f := range fixed {
		if http.CanonicalHeaderKey(f.key) != f.key {
			panic("api: secure header key not canonical: " + f.key)
		}
	}
	var hsts []string
	if hstsMaxAge != 0 {
		hsts = one(fmt.Sprintf("max-age=%d; includeSubdomains", hstsMaxAge))
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			for _, f := range fixed {
				h[f.key] = f.val
			}
			if hsts != nil && c.Scheme() == "https" {
				h[echo.HeaderStrictTransportSecurity] = hsts
			}
			return next(c)
		}
	}
}

// bodyLimit is echo's BodyLimit at max bytes: a larger declared body is a
// 413 before any handler reads it.
// A request without a body (net/http's http.NoBody: no Content-Length, not
// chunked, e.g. every poll) has nothing to limit and skips the wrapper.
// Routes named by a group's OwnBodies bound their own bodies and are
// skipped.
func bodyLimit(max int64, groups []Routes) echo.MiddlewareFunc {
	own := map[string]bool{}
	for _, g := range groups {
		if o, ok := g.(OwnBodies); ok {
			for _, p := range o.OwnBodyRoutes() {
				own[p] = true
			}
		}
	}
	return middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit:   strconv.FormatInt(max, 10) + "B",
		Skipper: func(c echo.Context) bool { return c.Request().Body == http.NoBody || own[c.Path()] },
	})
}
