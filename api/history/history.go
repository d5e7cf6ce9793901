package history

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/archive"
)

// Errors of the history routes that are not the archive's own.
var (
	// ErrNotEnded: a receipt was asked for a trip that is neither
	// completed nor cancelled (409).
	ErrNotEnded = errors.New("the trip has not ended")
	// ErrNoArchive: this node has no archive, or has not opened it yet
	// (503).
	ErrNoArchive = errors.New("this node has no archive open; retry shortly")
)

// Trips are the trip records: lists and one trip (trips.go, receipt.go).
type Trips interface {
	ListTrips(ctx context.Context, q archive.TripQuery) (archive.TripPage, error)
	Trip(ctx context.Context, id string) (archive.Trip, error)
}

// Records are what a receipt is made of besides the trip record: its
// events, trail and ledger (receipt.go).
type Records interface {
	Events(ctx context.Context, q archive.EventQuery) ([]archive.Event, error)
	Trail(ctx context.Context, q archive.TrailQuery) ([]archive.Point, error)
	Ledger(ctx context.Context, tripID string) ([]archive.Entry, error)
}

// Drivers are a driver's days and shifts (shifts.go).
type Drivers interface {
	DriverDays(ctx context.Context, q archive.DriverQuery) ([]archive.Day, error)
	Shifts(ctx context.Context, q archive.DriverQuery) ([]archive.Shift, error)
}

// Deps are what the routes read. A nil field makes its routes answer
// ErrNoArchive (503); archive/sqlstore.Store implements all three.
type Deps struct {
	Trips   Trips
	Records Records
	Drivers Drivers
	// Now is the clock that ends a shift still open. Zero: time.Now.
	Now func() time.Time
}

// Routes are the history routes (api.Routes).
type Routes struct {
	d Deps
}

// New returns the history routes over d.
func New(d Deps) *Routes {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Routes{d: d}
}

// Register adds the routes to e, each guarded by its roles; a backend
// service whose API key holds trips:read reads every one as ops does.
// Viewers (share links) are refused every one: a link opens one trip's
// live view, not its history.
func (r *Routes) Register(e *echo.Echo) {
	rider, driver, ops, read := tokens.RoleRider, tokens.RoleDriver, tokens.RoleOps, tokens.ScopeTripsRead
	e.GET("/v1/trips", caller.GuardScope(r.listTrips, read, rider, driver, ops))
	e.GET("/v1/trips/:id/receipt", caller.GuardScope(r.receipt, read, rider, driver, ops))
	e.GET("/v1/drivers/:id/trips", caller.GuardScope(r.driverTrips, read, driver, ops))
	e.GET("/v1/drivers/:id/shifts", caller.GuardScope(r.shifts, read, driver, ops))
}

// forbidden is the 403 of a caller asking for someone else's history.
func forbidden(cl *tokens.Claims, what string) error {
	return fmt.Errorf("%w: %s %s may not read %s", caller.ErrForbidden, cl.Role, cl.Subject, what)
}

// selfOrOps checks that the caller is driver id, ops or a trips:read service.
func selfOrOps(cl *tokens.Claims, driverID string) error {
	if caller.Allowed(cl, tokens.ScopeTripsRead) || cl.Role == tokens.RoleDriver && cl.Subject == driverID {
		return nil
	}
	return forbidden(cl, "the history of driver "+driverID)
}

// canSee: the trip's rider, its (latest) driver, ops, a trips:read service.
func canSee(cl *tokens.Claims, t archive.Trip) bool {
	switch cl.Role {
	case tokens.RoleOps, tokens.RoleService:
		return caller.Allowed(cl, tokens.ScopeTripsRead)
	case tokens.RoleRider:
		return cl.Subject != "" && cl.Subject == t.RiderID
	case tokens.RoleDriver:
		return cl.Subject != "" && cl.Subject == t.DriverID
	}
	return false
}

// limitParam reads ?limit= (absent: 0, the query's default); a value that
// is not an integer is archive.ErrInvalidLimit like one out of range.
func limitParam(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%w: limit %q is not an integer", archive.ErrInvalidLimit, clip(v))
	}
	return n, nil
}

// timeParam reads an RFC 3339 time (absent: zero).
func timeParam(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q is not an RFC 3339 time", archive.ErrInvalid, name, clip(v))
	}
	return t, nil
}

// clip shortens a client's value quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
