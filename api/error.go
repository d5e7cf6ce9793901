package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/api/history"
	"github.com/hextrack/hextrack/api/sse"
	"github.com/hextrack/hextrack/apikey"
	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/ops"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/webhook"
	"github.com/hextrack/hextrack/zone"
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
	ErrUnauthorized = caller.ErrUnauthorized
	ErrForbidden    = caller.ErrForbidden
)

// errorRow maps one domain error to its status and code.
type errorRow struct {
	err    error
	status int
	code   string
	// message replaces the error's own text ("": the text is sent, it is
	// ours: sentinels and the wrapping done by the domain packages).
	message string
	// retry is the Retry-After sent with it (0: none).
	retry time.Duration
	// details, if set, gives the message and the body's details from the
	// typed error that carries them (the message is then that error's own,
	// without what wrapped it).
	details func(error) (string, any)
}

// msgUnavailable is what a client is told when the node cannot reach its
// data store: never the Redis error itself (addresses, internals).
const msgUnavailable = "this node cannot reach its data store; retry shortly"

// errorTable maps every domain error to a status and a code: it is the only
// place that decides what status an error gets (TestErrorTableCoversSentinels
// fails when a domain package adds a sentinel that is not here). The first
// matching row (errors.Is) wins. Anything unmapped becomes 500 "internal",
// logged with the request id, its text never sent.
var errorTable = []errorRow{
	// The node cannot serve now: the client retries, on another node if
	// need be (a load balancer retries 503s elsewhere). First, so that a
	// Redis failure wrapped by a domain error is still a 503.
	{err: feed.ErrUnavailable, status: http.StatusServiceUnavailable, code: "unavailable", message: msgUnavailable, retry: time.Second},
	{err: feed.ErrClosed, status: http.StatusServiceUnavailable, code: "unavailable", message: "this node is shutting down; retry shortly", retry: time.Second},
	{err: feed.ErrSlowConsumer, status: http.StatusServiceUnavailable, code: "unavailable", message: "the stream fell behind; resume from the last event id", retry: time.Second},

	// api
	{err: ErrUnauthorized, status: http.StatusUnauthorized, code: "unauthorized"},
	{err: ErrForbidden, status: http.StatusForbidden, code: "forbidden"},
	{err: sse.ErrShuttingDown, status: http.StatusServiceUnavailable, code: "draining"},

	// driver
	{err: driver.ErrInvalid, status: http.StatusBadRequest, code: "invalid_argument"},
	{err: driver.ErrTooManyPings, status: http.StatusBadRequest, code: "too_many_pings"},
	{err: driver.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	{err: driver.ErrConflict, status: http.StatusConflict, code: "conflict"},
	{err: driver.ErrSuspended, status: http.StatusForbidden, code: "driver_suspended"},
	// A *driver.RateLimitError: its RetryAfter sets the header.
	{err: driver.ErrRateLimited, status: http.StatusTooManyRequests, code: "rate_limited"},

	// trip
	{err: trip.ErrInvalid, status: http.StatusBadRequest, code: "invalid_argument"},
	{err: trip.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	{err: trip.ErrForbidden, status: http.StatusForbidden, code: "forbidden"},
	{err: trip.ErrInvalidTransition, status: http.StatusConflict, code: "invalid_transition", details: transitionDetails},
	{err: trip.ErrVersionMismatch, status: http.StatusPreconditionFailed, code: "version_mismatch", details: versionDetails},
	{err: trip.ErrIdempotencyMismatch, status: http.StatusUnprocessableEntity, code: "idempotency_key_reused"},
	{err: trip.ErrShareRevoked, status: http.StatusUnauthorized, code: "share_revoked"},
	// stops (api/stops)
	{err: trip.ErrTooFar, status: http.StatusUnprocessableEntity, code: "too_far_from_stop"},
	{err: trip.ErrProofRequired, status: http.StatusUnprocessableEntity, code: "proof_required"},
	{err: trip.ErrInvalidPIN, status: http.StatusUnprocessableEntity, code: "invalid_pin"},
	{err: trip.ErrPINExhausted, status: http.StatusTooManyRequests, code: "pin_attempts_exhausted"},
	{err: trip.ErrStopStatus, status: http.StatusConflict, code: "stop_status"},
	{err: trip.ErrStopsPending, status: http.StatusConflict, code: "stops_pending"},

	// dispatch, ops
	{err: dispatch.ErrInvalid, status: http.StatusBadRequest, code: "invalid_argument"},
	{err: ops.ErrInvalid, status: http.StatusBadRequest, code: "invalid_argument"},

	// payment
	{err: payment.ErrNotFound, status: http.StatusNotFound, code: "payment_not_found"},
	{err: payment.ErrSignature, status: http.StatusUnauthorized, code: "invalid_signature"},
	{err: payment.ErrInvalidEvent, status: http.StatusBadRequest, code: "invalid_event"},

	// feed: cursors (Last-Event-ID, after=) and topics
	{err: feed.ErrInvalidID, status: http.StatusBadRequest, code: "invalid_cursor"},
	{err: feed.ErrTrimmed, status: http.StatusGone, code: "cursor_expired"},
	{err: feed.ErrUnknownID, status: http.StatusGone, code: "cursor_unknown"},
	{err: feed.ErrInvalidTopic, status: http.StatusBadRequest, code: "invalid_argument"},
	// API keys (apikey): a rejected key is a 401 saying why
	{err: apikey.ErrRejected, status: http.StatusUnauthorized, code: "unauthorized"},
	{err: apikey.ErrInvalidScope, status: http.StatusBadRequest, code: "invalid_scope"},
	{err: apikey.ErrInvalid, status: http.StatusBadRequest, code: "invalid_argument"},
	{err: apikey.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	{err: apikey.ErrUnavailable, status: http.StatusServiceUnavailable, code: "unavailable", message: "API keys cannot be checked on this node now; retry shortly", retry: time.Second},
	// archive and the history routes (api/history)
	{err: archive.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	{err: archive.ErrInvalidCursor, status: http.StatusBadRequest, code: "invalid_cursor"},
	{err: archive.ErrInvalidRange, status: http.StatusBadRequest, code: "invalid_range"},
	{err: archive.ErrInvalidLimit, status: http.StatusBadRequest, code: "invalid_limit"},
	{err: archive.ErrInvalid, status: http.StatusBadRequest, code: "invalid_argument"},
	{err: history.ErrNotEnded, status: http.StatusConflict, code: "trip_not_ended"},
	{err: history.ErrNoArchive, status: http.StatusServiceUnavailable, code: "unavailable", message: "the archive is not available on this node; retry shortly", retry: time.Second},
	// webhooks (api/webhooks)
	{err: webhook.ErrInvalidURL, status: http.StatusBadRequest, code: "invalid_url"},
	{err: webhook.ErrURLNotAllowed, status: http.StatusBadRequest, code: "url_not_allowed"},
	{err: webhook.ErrInvalidEventType, status: http.StatusBadRequest, code: "invalid_event_type"},
	{err: webhook.ErrInvalid, status: http.StatusBadRequest, code: "invalid_argument"},
	{err: webhook.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	{err: webhook.ErrNoStore, status: http.StatusServiceUnavailable, code: "unavailable", retry: time.Second},
	// zones (api/zones; a trip outside every service area, trips.go)
	{err: zone.ErrOutsideServiceArea, status: http.StatusUnprocessableEntity, code: "outside_service_area"},
	{err: zone.ErrUnclosedRing, status: http.StatusUnprocessableEntity, code: "zone_ring_not_closed"},
	{err: zone.ErrSelfIntersecting, status: http.StatusUnprocessableEntity, code: "zone_self_intersecting"},
	{err: zone.ErrTooManyVertices, status: http.StatusUnprocessableEntity, code: "zone_too_many_vertices"},
	{err: zone.ErrTooLarge, status: http.StatusUnprocessableEntity, code: "zone_too_large"},
	{err: zone.ErrOutOfRange, status: http.StatusUnprocessableEntity, code: "zone_coordinates_out_of_range"},
	{err: zone.ErrBadGeometry, status: http.StatusBadRequest, code: "zone_invalid_geometry"},
	{err: zone.ErrInvalid, status: http.StatusBadRequest, code: "invalid_argument"},
	{err: zone.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	// proof of delivery (api/pod): a file's size and content type
	{err: pod.ErrTooLarge, status: http.StatusRequestEntityTooLarge, code: "upload_too_large"},
	{err: pod.ErrUnsupportedType, status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
	{err: pod.ErrInvalid, status: http.StatusBadRequest, code: "invalid_argument"},
	{err: pod.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	// feed.ErrInvalidEvent is not here on purpose: it is our own publish of
	// a malformed event, a bug: 500, logged.
}

// transitionDetails: the trip's status and version when the action was
// refused (a *trip.TransitionError), so a client can refresh its view.
func transitionDetails(err error) (string, any) {
	var te *trip.TransitionError
	if !errors.As(err, &te) {
		return "", nil
	}
	return te.Error(), map[string]any{"status": te.Current, "version": te.Version}
}

// versionDetails: the trip's current version (a *trip.VersionError).
func versionDetails(err error) (string, any) {
	var ve *trip.VersionError
	if !errors.As(err, &ve) {
		return "", nil
	}
	return ve.Error(), map[string]any{"version": ve.Current}
}

// httpCodes are the codes of echo's own errors (routing, body limit, ...).
var httpCodes = map[int]string{
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestEntityTooLarge: "body_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusBadRequest:            "bad_request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusServiceUnavailable:    "unavailable",
}

// row is the table's row for err, or nil.
func row(err error) *errorRow {
	for i := range errorTable {
		if errors.Is(err, errorTable[i].err) {
			return &errorTable[i]
		}
	}
	return nil
}

// toError turns any error into the *Error rendered to the client; known is
// false for errors nobody mapped (a 500 to log).
func toError(err error) (*Error, bool) {
	var ae *Error
	if errors.As(err, &ae) {
		return ae, true
	}
	if r := row(err); r != nil {
		ae = &Error{Status: r.status, Code: r.code, Message: r.message}
		if r.details != nil {
			ae.Message, ae.Details = r.details(err)
		}
		if ae.Message == "" {
			ae.Message = err.Error()
		}
		return ae, true
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := httpCodes[he.Code]
		if code == "" || he.Code >= 500 {
			return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}, false
		}
		return &Error{Status: he.Code, Code: code, Message: http.StatusText(he.Code)}, true
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}, false
}

// retryAfter is the Retry-After to send with err (0: none): its own
// (driver.RateLimitError knows when its bucket can pay), else its row's.
func retryAfter(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	var ae *Error
	if errors.As(err, &ae) {
		return 0
	}
	if r := row(err); r != nil {
		return r.retry
	}
	return 0
}

// handleError is echo's HTTPErrorHandler: one place renders every error.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae, known := toError(err)
	switch {
	case !known && errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil:
		// The client went away mid-request: nobody reads the reply and nothing
		// is wrong with the server, so this is not an error worth paging on.
		s.log.Debug("client went away", "request_id", requestID(c), "route", c.Path())
		return
	case !known:
		s.log.Error("request failed", "request_id", requestID(c), "route", c.Path(), "err", err)
	case errors.Is(err, feed.ErrUnavailable):
		s.log.Warn("data store unavailable", "request_id", requestID(c), "route", c.Path(), "err", err)
	}
	if d := retryAfter(err); d > 0 {
		setRetryAfter(c, d)
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
