package api

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/history"
	"github.com/hextrack/hextrack/api/sse"
	"github.com/hextrack/hextrack/apikey"
	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/blob"
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

// sentinels are the exported Err* variables of the domain packages the api
// calls, by name. TestErrorTableCoversSentinels checks this list against
// the packages' source, so a new sentinel fails the test until it is listed
// here and mapped in errorTable (or listed in unmapped).
var sentinels = map[string]error{
	"apikey.ErrRejected":          apikey.ErrRejected,
	"apikey.ErrInvalid":           apikey.ErrInvalid,
	"apikey.ErrInvalidScope":      apikey.ErrInvalidScope,
	"apikey.ErrNotFound":          apikey.ErrNotFound,
	"apikey.ErrUnavailable":       apikey.ErrUnavailable,
	"dispatch.ErrInvalid":         dispatch.ErrInvalid,
	"driver.ErrInvalid":           driver.ErrInvalid,
	"driver.ErrTooManyPings":      driver.ErrTooManyPings,
	"driver.ErrNotFound":          driver.ErrNotFound,
	"driver.ErrConflict":          driver.ErrConflict,
	"driver.ErrSuspended":         driver.ErrSuspended,
	"driver.ErrRateLimited":       driver.ErrRateLimited,
	"feed.ErrInvalidID":           feed.ErrInvalidID,
	"feed.ErrTrimmed":             feed.ErrTrimmed,
	"feed.ErrUnknownID":           feed.ErrUnknownID,
	"feed.ErrSlowConsumer":        feed.ErrSlowConsumer,
	"feed.ErrClosed":              feed.ErrClosed,
	"feed.ErrInvalidTopic":        feed.ErrInvalidTopic,
	"feed.ErrInvalidEvent":        feed.ErrInvalidEvent,
	"feed.ErrUnavailable":         feed.ErrUnavailable,
	"ops.ErrInvalid":              ops.ErrInvalid,
	"payment.ErrNotFound":         payment.ErrNotFound,
	"payment.ErrSignature":        payment.ErrSignature,
	"payment.ErrInvalidEvent":     payment.ErrInvalidEvent,
	"trip.ErrInvalid":             trip.ErrInvalid,
	"trip.ErrNotFound":            trip.ErrNotFound,
	"trip.ErrForbidden":           trip.ErrForbidden,
	"trip.ErrInvalidTransition":   trip.ErrInvalidTransition,
	"trip.ErrVersionMismatch":     trip.ErrVersionMismatch,
	"trip.ErrIdempotencyMismatch": trip.ErrIdempotencyMismatch,
	"trip.ErrShareRevoked":        trip.ErrShareRevoked,
	"trip.ErrTooFar":              trip.ErrTooFar,
	"trip.ErrProofRequired":       trip.ErrProofRequired,
	"trip.ErrInvalidPIN":          trip.ErrInvalidPIN,
	"trip.ErrPINExhausted":        trip.ErrPINExhausted,
	"trip.ErrStopStatus":          trip.ErrStopStatus,
	"trip.ErrStopsPending":        trip.ErrStopsPending,
	"api.ErrUnauthorized":         ErrUnauthorized,
	"api.ErrForbidden":            ErrForbidden,
	"sse.ErrShuttingDown":         sse.ErrShuttingDown,
	"archive.ErrNotFound":         archive.ErrNotFound,
	"archive.ErrInvalid":          archive.ErrInvalid,
	"archive.ErrInvalidCursor":    archive.ErrInvalidCursor,
	"archive.ErrInvalidRange":     archive.ErrInvalidRange,
	"archive.ErrInvalidLimit":     archive.ErrInvalidLimit,
	"history.ErrNotEnded":         history.ErrNotEnded,
	"history.ErrNoArchive":        history.ErrNoArchive,
	"webhook.ErrInvalidURL":       webhook.ErrInvalidURL,
	"webhook.ErrURLNotAllowed":    webhook.ErrURLNotAllowed,
	"webhook.ErrInvalidEventType": webhook.ErrInvalidEventType,
	"webhook.ErrInvalid":          webhook.ErrInvalid,
	"webhook.ErrNotFound":         webhook.ErrNotFound,
	"webhook.ErrNoStore":          webhook.ErrNoStore,
	"zone.ErrNotFound":            zone.ErrNotFound,
	"zone.ErrInvalid":             zone.ErrInvalid,
	"zone.ErrBadGeometry":         zone.ErrBadGeometry,
	"zone.ErrUnclosedRing":        zone.ErrUnclosedRing,
	"zone.ErrSelfIntersecting":    zone.ErrSelfIntersecting,
	"zone.ErrTooManyVertices":     zone.ErrTooManyVertices,
	"zone.ErrTooLarge":            zone.ErrTooLarge,
	"zone.ErrOutOfRange":          zone.ErrOutOfRange,
	"zone.ErrOutsideServiceArea":  zone.ErrOutsideServiceArea,
	"pod.ErrInvalid":              pod.ErrInvalid,
	"pod.ErrTooLarge":             pod.ErrTooLarge,
	"pod.ErrUnsupportedType":      pod.ErrUnsupportedType,
	"pod.ErrNotFound":             pod.ErrNotFound,
	"blob.ErrNotFound":            blob.ErrNotFound,
	"blob.ErrInvalidKey":          blob.ErrInvalidKey,
}

// unmapped are sentinels that are a 500 on purpose, with the reason.
var unmapped = map[string]string{
	"feed.ErrInvalidEvent": "only our own code publishes events: a malformed one is a bug, logged",
	"blob.ErrNotFound":     "pod turns a missing file into pod.ErrNotFound; anywhere else it is a bug, logged",
	"blob.ErrInvalidKey":   "pod builds keys from checked ids: an invalid one is a bug, logged",
}

// declaredSentinels parses the non-test Go files of dir and returns the
// exported package-level variables named Err*, as "pkg.ErrName".
func declaredSentinels(t *testing.T, dir, pkg string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") && n.IsExported() {
						out = append(out, pkg+"."+n.Name)
					}
				}
			}
		}
	}
	return out
}

// TestErrorTableCoversSentinels: every sentinel the domain packages declare
// has a row of errorTable (or is a listed, deliberate 500), and the table
// has no row for an error nobody declares.
func TestErrorTableCoversSentinels(t *testing.T) {
	var declared []string
	for _, pkg := range []string{"dispatch", "driver", "feed", "ops", "payment", "trip"} {
		declared = append(declared, declaredSentinels(t, filepath.Join("..", pkg), pkg)...)
	}
	declared = append(declared, declaredSentinels(t, filepath.Join("..", "apikey"), "apikey")...)
	declared = append(declared, declaredSentinels(t, ".", "api")...)
	declared = append(declared, declaredSentinels(t, "sse", "sse")...)
	declared = append(declared, declaredSentinels(t, filepath.Join("..", "archive"), "archive")...)
	declared = append(declared, declaredSentinels(t, "history", "history")...)
	declared = append(declared, declaredSentinels(t, filepath.Join("..", "webhook"), "webhook")...)
	declared = append(declared, declaredSentinels(t, filepath.Join("..", "zone"), "zone")...)
	declared = append(declared, declaredSentinels(t, filepath.Join("..", "pod"), "pod")...)
	declared = append(declared, declaredSentinels(t, filepath.Join("..", "blob"), "blob")...)
	for _, name := range declared {
		if _, ok := sentinels[name]; !ok {
			t.Errorf("%s is declared but not in this test's sentinels: list it, and map it in errorTable (error.go)", name)
		}
	}
	for name, err := range sentinels {
		if !slices.Contains(declared, name) {
			t.Errorf("%s is listed but no longer declared", name)
		}
		r := row(fmt.Errorf("wrapped: %w", err))
		_, deliberate := unmapped[name]
		switch {
		case r == nil && !deliberate:
			t.Errorf("%s has no row in errorTable: it would be a 500", name)
		case r != nil && deliberate:
			t.Errorf("%s is mapped but listed as unmapped", name)
		case r != nil && r.err != err:
			t.Errorf("%s is caught by the row of %v", name, r.err)
		}
	}
	for _, r := range errorTable {
		if r.status < 400 || r.status > 599 || r.code == "" {
			t.Errorf("row %v: status %d code %q", r.err, r.status, r.code)
		}
	}
}

// TestToError: a mapped error keeps its status, code and message; details
// and Retry-After come from its row; unknown errors are a silent 500.
func TestToError(t *testing.T) {
	for _, c := range []struct {
		name    string
		err     error
		status  int
		code    string
		message string
		retry   time.Duration
		details any
	}{
		{"domain", fmt.Errorf("%w: pickup is missing", trip.ErrInvalid), 400, "invalid_argument", "invalid request: pickup is missing", 0, nil},
		{"archive down hides the cause", fmt.Errorf("%w: %w", history.ErrNoArchive, errors.New("archive: list trips: dial tcp 10.0.0.2:5432: refused")),
			503, "unavailable", "the archive is not available on this node; retry shortly", time.Second, nil},
		{"bad cursor", fmt.Errorf("%w: %q is not a cursor of this archive", archive.ErrInvalidCursor, "x"), 400, "invalid_cursor", `invalid cursor: "x" is not a cursor of this archive`, 0, nil},
		{"unavailable hides the cause", fmt.Errorf("trip: get: %w", fmt.Errorf("%w: dial tcp 10.0.0.1:6379: connection refused", feed.ErrUnavailable)),
			503, "unavailable", msgUnavailable, time.Second, nil},
		{"transition details", fmt.Errorf("ws: %w", &trip.TransitionError{Action: "pickup", Current: "completed", Version: 7}),
			409, "invalid_transition", "transition not allowed: cannot pickup a trip that is completed", 0, map[string]any{"status": "completed", "version": int64(7)}},
		{"version details", &trip.VersionError{Want: 2, Current: 3}, 412, "version_mismatch", "trip version does not match: If-Match 2, trip is at version 3", 0, map[string]any{"version": int64(3)}},
		{"rate limit's own wait", &driver.RateLimitError{Wait: 3 * time.Second}, 429, "rate_limited", "too many pings: retry in 3s", 3 * time.Second, nil},
		{"an *Error as it is", &Error{Status: 418, Code: "teapot", Message: "short and stout"}, 418, "teapot", "short and stout", 0, nil},
		{"unknown", errors.New("secret internals"), 500, "internal", "internal error", 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ae, known := toError(c.err)
			if ae.Status != c.status || ae.Code != c.code || ae.Message != c.message || known != (c.status != 500) {
				t.Fatalf("toError = %d %q %q known=%v, want %d %q %q", ae.Status, ae.Code, ae.Message, known, c.status, c.code, c.message)
			}
			if got, want := fmt.Sprint(ae.Details), fmt.Sprint(c.details); c.details != nil && got != want {
				t.Fatalf("details %s, want %s", got, want)
			}
			if got := retryAfter(c.err); got != c.retry {
				t.Fatalf("retryAfter = %v, want %v", got, c.retry)
			}
		})
	}
	if ae, _ := toError(echo.ErrNotFound); ae.Status != http.StatusNotFound || ae.Code != "not_found" {
		t.Fatalf("echo's 404: %d %q", ae.Status, ae.Code)
	}
}

// TestHandleErrorClientGone: a request the client cancelled is logged at
// debug, not as an error, and gets no reply; an unknown error on a live
// request is still logged as an error and answered 500.
func TestHandleErrorClientGone(t *testing.T) {
	var logs strings.Builder
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	e := echo.New()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodGet, "/v1/trips/t1", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	s.handleError(fmt.Errorf("read trip: %w", context.Canceled), e.NewContext(req, rec))
	if !strings.Contains(logs.String(), "level=DEBUG msg=\"client went away\"") || strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("cancelled request logged as:\n%s", logs.String())
	}
	if rec.Body.Len() != 0 {
		t.Fatalf("cancelled request got a reply: %q", rec.Body.String())
	}

	logs.Reset()
	req = httptest.NewRequest(http.MethodGet, "/v1/trips/t1", nil)
	rec = httptest.NewRecorder()
	s.handleError(fmt.Errorf("read trip: %w", context.Canceled), e.NewContext(req, rec))
	if !strings.Contains(logs.String(), "level=ERROR") || rec.Code != http.StatusInternalServerError {
		t.Fatalf("live request: status %d, logs:\n%s", rec.Code, logs.String())
	}
}
