package stops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// Edits change a trip's pending stops (tripredis.Stops); ifMatch 0: not
// conditional.
type Edits interface {
	Add(ctx context.Context, id string, a trip.Actor, in trip.StopInput, position *int, ifMatch int64) (trip.Snapshot, error)
	Remove(ctx context.Context, id, stopID string, a trip.Actor, ifMatch int64) (trip.Snapshot, error)
	Reorder(ctx context.Context, id string, a trip.Actor, order []string, ifMatch int64) (trip.Snapshot, error)
}

// Actions close a stop (tripredis.Stops).
type Actions interface {
	Complete(ctx context.Context, id, stopID string, a trip.Actor, in trip.CompleteStop) (trip.Snapshot, error)
	Fail(ctx context.Context, id, stopID string, a trip.Actor, reason string) (trip.Snapshot, error)
	Skip(ctx context.Context, id, stopID string, a trip.Actor, reason string) (trip.Snapshot, error)
}

// Service is both (tripredis.Stops).
type Service interface {
	Edits
	Actions
}

// Routes are the stop routes.
type Routes struct{ svc Service }

// New returns the routes over svc; nil svc: every route answers
// feed.ErrUnavailable (503).
func New(svc Service) *Routes { return &Routes{svc: svc} }

// Register adds the routes to e.
func (r *Routes) Register(e *echo.Echo) {
	editors := []string{tokens.RoleRider, tokens.RoleOps}
	e.POST("/v1/trips/:id/stops", r.guard(r.add, editors...))
	e.DELETE("/v1/trips/:id/stops/:stop_id", r.guard(r.remove, editors...))
	e.PUT("/v1/trips/:id/stops/order", r.guard(r.reorder, editors...))
	e.POST("/v1/trips/:id/stops/:stop_id/complete", r.guard(r.complete, tokens.RoleDriver, tokens.RoleOps))
	e.POST("/v1/trips/:id/stops/:stop_id/fail", r.guard(r.fail, tokens.RoleDriver, tokens.RoleOps))
	e.POST("/v1/trips/:id/stops/:stop_id/skip", r.guard(r.skip, editors...))
}

// guard is caller.Guard for roles, answering 503 when the routes have no
// service. (A change forgets the trip's cached poll tags: api's
// pollcache.ForgetTripChanges middleware.)
func (r *Routes) guard(h echo.HandlerFunc, roles ...string) echo.HandlerFunc {
	return caller.Guard(func(c echo.Context) error {
		if r.svc == nil {
			return fmt.Errorf("%w: trips are not served by this node", feed.ErrUnavailable)
		}
		return h(c)
	}, roles...)
}

// actor is the caller as trip.Actor (as api's own trip routes make it).
func actor(c echo.Context) trip.Actor {
	cl := caller.From(c)
	if cl == nil {
		return trip.Actor{}
	}
	a := trip.Actor{Role: cl.Role, ID: cl.Subject}
	if cl.Role == tokens.RoleService {
		a.Role = trip.RoleOps
	}
	return a
}

// maxBody bounds a stop body.
const maxBody = 64 << 10

// bind decodes an optional (empty: v unchanged) JSON body strictly.
func bind(c echo.Context, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxBody))
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return echo.ErrStatusRequestEntityTooLarge
	}
	if err != nil {
		return fmt.Errorf("%w: body: %w", trip.ErrInvalid, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", trip.ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON body", trip.ErrInvalid)
	}
	return nil
}

// ifMatch is the If-Match version (0: none, or "*").
func ifMatch(c echo.Context) (int64, error) {
	im := c.Request().Header.Get("If-Match")
	if im == "" {
		return 0, nil
	}
	v, anyVersion, err := trip.ParseVersion(im)
	if err != nil || anyVersion {
		return 0, err
	}
	return v, nil
}

// render writes a snapshot with its ETag.
func render(c echo.Context, status int, snap trip.Snapshot) error {
	c.Response().Header().Set("ETag", snap.ETag())
	return c.JSON(status, snap)
}

type addBody struct {
	trip.StopInput
	// Position is where the stop goes (nil: last).
	Position *int `json:"position,omitempty"`
}

func (r *Routes) add(c echo.Context) error {
	var b addBody
	if err := bind(c, &b); err != nil {
		return err
	}
	v, err := ifMatch(c)
	if err != nil {
		return err
	}
	snap, err := r.svc.Add(c.Request().Context(), c.Param("id"), actor(c), b.StopInput, b.Position, v)
	if err != nil {
		return err
	}
	return render(c, http.StatusCreated, snap)
}

func (r *Routes) remove(c echo.Context) error {
	v, err := ifMatch(c)
	if err != nil {
		return err
	}
	snap, err := r.svc.Remove(c.Request().Context(), c.Param("id"), c.Param("stop_id"), actor(c), v)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, snap)
}

type orderBody struct {
	Order []string `json:"order"`
}

func (r *Routes) reorder(c echo.Context) error {
	var b orderBody
	if err := bind(c, &b); err != nil {
		return err
	}
	v, err := ifMatch(c)
	if err != nil {
		return err
	}
	snap, err := r.svc.Reorder(c.Request().Context(), c.Param("id"), actor(c), b.Order, v)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, snap)
}

func (r *Routes) complete(c echo.Context) error {
	var b trip.CompleteStop
	if err := bind(c, &b); err != nil {
		return err
	}
	snap, err := r.svc.Complete(c.Request().Context(), c.Param("id"), c.Param("stop_id"), actor(c), b)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, snap)
}

type reasonBody struct {
	Reason string `json:"reason"`
}

func (r *Routes) fail(c echo.Context) error {
	var b reasonBody
	if err := bind(c, &b); err != nil {
		return err
	}
	snap, err := r.svc.Fail(c.Request().Context(), c.Param("id"), c.Param("stop_id"), actor(c), b.Reason)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, snap)
}

func (r *Routes) skip(c echo.Context) error {
	var b reasonBody
	if err := bind(c, &b); err != nil {
		return err
	}
	snap, err := r.svc.Skip(c.Request().Context(), c.Param("id"), c.Param("stop_id"), actor(c), b.Reason)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, snap)
}
