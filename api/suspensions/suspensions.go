package suspensions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
)

// Drivers is what the routes call (driverredis.Service, with the command
// channel's notice to the driver's connections, wired by cmd).
type Drivers interface {
	Suspend(ctx context.Context, driverID, by, reason string) (driver.State, error)
	Reinstate(ctx context.Context, driverID, by, reason string) (driver.State, error)
	Suspended(ctx context.Context, limit int) ([]driver.SuspendedDriver, error)
	SuspensionLog(ctx context.Context, driverID string) ([]driver.SuspensionChange, error)
	Get(ctx context.Context, driverID string) (driver.State, error)
}

// Routes are the suspension routes.
type Routes struct {
	drivers Drivers
	log     *slog.Logger
}

// maxBody bounds a request body (a reason is at most 500 bytes).
const maxBody = 4 << 10

// New returns the routes over d (nil: every route is a 503), logging every change to log (nil:
// slog.Default()).
func New(d Drivers, log *slog.Logger) *Routes {
	if log == nil {
		log = slog.Default()
	}
	return &Routes{drivers: d, log: log}
}

// Register adds the routes to e, for ops only.
func (r *Routes) Register(e *echo.Echo) {
	guard := caller.OpsOnly(func() error {
		if r.drivers == nil { // a node built without the driver service
			return fmt.Errorf("%w: drivers are not served by this node", feed.ErrUnavailable)
		}
		return nil
	})
	e.POST("/v1/drivers/:id/suspend", guard(r.suspend))
	e.POST("/v1/drivers/:id/reinstate", guard(r.reinstate))
	e.GET("/v1/drivers/:id/suspensions", guard(r.history))
	e.GET("/v1/ops/drivers/suspended", guard(r.list))
}

type changeRequest struct {
	Reason string `json:"reason"`
}

// bind reads {"reason"} strictly; an empty body is {} when allowed.
func bind(c echo.Context, emptyOK bool) (changeRequest, error) {
	var req changeRequest
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, maxBody+1))
	switch {
	case err != nil:
		return req, fmt.Errorf("%w: could not read the body", driver.ErrInvalid)
	case len(b) > maxBody:
		return req, fmt.Errorf("%w: body exceeds %d bytes", driver.ErrInvalid, maxBody)
	case len(b) == 0 && emptyOK:
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("%w: body must be {\"reason\": \"...\"}: %w", driver.ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, fmt.Errorf("%w: body must be one JSON object", driver.ErrInvalid)
	}
	return req, nil
}

func (r *Routes) suspend(c echo.Context) error {
	req, err := bind(c, false)
	if err != nil {
		return err
	}
	id, by := c.Param("id"), who(c)
	st, err := r.drivers.Suspend(c.Request().Context(), id, by, req.Reason)
	if err != nil {
		return err
	}
	r.log.Info("driver suspended", "driver", id, "by", by, "reason", req.Reason)
	return c.JSON(http.StatusOK, st)
}

func (r *Routes) reinstate(c echo.Context) error {
	req, err := bind(c, true)
	if err != nil {
		return err
	}
	id, by := c.Param("id"), who(c)
	st, err := r.drivers.Reinstate(c.Request().Context(), id, by, req.Reason)
	if err != nil {
		return err
	}
	r.log.Info("driver reinstated", "driver", id, "by", by, "reason", req.Reason)
	return c.JSON(http.StatusOK, st)
}

// historyReply is GET /v1/drivers/{id}/suspensions.
type historyReply struct {
	DriverID   string                    `json:"driver_id"`
	Suspension *driver.Suspension        `json:"suspension"`
	Log        []driver.SuspensionChange `json:"log"`
}

func (r *Routes) history(c echo.Context) error {
	ctx, id := c.Request().Context(), c.Param("id")
	log, err := r.drivers.SuspensionLog(ctx, id)
	if err != nil {
		return err
	}
	st, err := r.drivers.Get(ctx, id)
	if err != nil && !(errors.Is(err, driver.ErrNotFound) && len(log) > 0) {
		return err // unknown: 404, unless its state expired after a change
	}
	return c.JSON(http.StatusOK, historyReply{DriverID: id, Suspension: st.Suspension, Log: log})
}

func (r *Routes) list(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%w: limit must be an integer within [1, 1000]", driver.ErrInvalid)
		}
		limit = n
	}
	ds, err := r.drivers.Suspended(c.Request().Context(), limit)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, map[string]any{"drivers": ds})
}

// who names the caller as the audit records it: role and subject.
func who(c echo.Context) string {
	if cl := caller.From(c); cl != nil {
		return cl.Role + ":" + cl.Subject
	}
	return ""
}
