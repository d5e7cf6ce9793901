package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/driver"
)

// Error is an error with an HTTP status and a stable code, safe to show.
type Error struct {
	Status  int
	Code    string
	Message string
	Details any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details any    `json:"details,omitempty"`
	} `json:"error"`
}

// Errors raised by the api package itself.
var (
	ErrUnauthorized = errors.New("missing, invalid or expired token")
	ErrForbidden    = errors.New("not allowed for this token")
)

// errorTable maps domain errors to a status and a code. It is the only
// place that decides what status an error gets. Messages of mapped errors
// are our own text and are sent; anything unmapped becomes 500 "internal".
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{ErrForbidden, http.StatusForbidden, "forbidden"},
	{driver.ErrInvalid, http.StatusBadRequest, "invalid_argument"},
	{driver.ErrTooManyPings, http.StatusBadRequest, "too_many_pings"},
	{driver.ErrNotFound, http.StatusNotFound, "not_found"},
	{driver.ErrConflict, http.StatusConflict, "conflict"},
	{driver.ErrRateLimited, http.StatusTooManyRequests, "rate_limited"},
}

// extraErrors lets other files of this package add rows (one per domain
// package) without touching the table above.
var extraErrors []struct {
	err    error
	status int
	code   string
}

// toError turns any error into the *Error rendered to the client.
func toError(err error) (*Error, bool) {
	var ae *Error
	if errors.As(err, &ae) {
		return ae, true
	}
	for _, rows := range [][]struct {
		err    error
		status int
		code   string
	}{errorTable, extraErrors, tripErrors, paymentErrors} {
		for _, row := range rows {
			if errors.Is(err, row.err) {
				return &Error{Status: row.status, Code: row.code, Message: err.Error()}, true
			}
		}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := map[int]string{
			http.StatusNotFound:              "not_found",
			http.StatusMethodNotAllowed:      "method_not_allowed",
			http.StatusRequestEntityTooLarge: "body_too_large",
			http.StatusUnsupportedMediaType:  "unsupported_media_type",
			http.StatusTooManyRequests:       "rate_limited",
			http.StatusBadRequest:            "bad_request",
			http.StatusUnauthorized:          "unauthorized",
			http.StatusForbidden:             "forbidden",
			http.StatusServiceUnavailable:    "unavailable",
		}[he.Code]
		if code == "" || he.Code >= 500 {
			return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}, false
		}
		return &Error{Status: he.Code, Code: code, Message: http.StatusText(he.Code)}, true
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}, false
}

// handleError is echo's HTTPErrorHandler: one place renders every error.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae, known := toError(err)
	if !known {
		s.log.Error("request failed", "request_id", requestID(c), "route", c.Path(), "err", err)
	}
	// Errors that know when to come back (driver.RateLimitError) say so.
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		setRetryAfter(c, ra.RetryAfter())
	}
	var body errorBody
	body.Error.Code = ae.Code
	body.Error.Message = ae.Message
	body.Error.Details = ae.Details
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, body)
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}
