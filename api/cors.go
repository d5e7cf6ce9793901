package api

import (
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

// secureHeaders is echo's Secure middleware: every response (API and
// pages) says nosniff, no framing, no referrer, and a CSP that lets an API
// response load nothing. Pages replace the CSP with theirs (web.go).
func secureHeaders(hstsMaxAge int) echo.MiddlewareFunc {
	return middleware.SecureWithConfig(middleware.SecureConfig{
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		ReferrerPolicy:        "no-referrer",
		ContentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'",
		HSTSMaxAge:            hstsMaxAge,
	})
}

// bodyLimit is echo's BodyLimit at max bytes: a larger declared body is a
// 413 before any handler reads it.
func bodyLimit(max int64) echo.MiddlewareFunc {
	return middleware.BodyLimit(strconv.FormatInt(max, 10) + "B")
}
