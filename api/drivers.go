package api

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/driver"

	"github.com/hextrack/hextrack/api/tokens"
)

func (s *Server) driverRoutes() {
	g, d := s.e.Group("/v1/drivers"), s.drivers
	g.GET("/nearby", guard(d.nearby, tokens.RoleRider, tokens.RoleOps, tokens.RoleDriver))
	g.POST("/:id/locations", guard(d.postLocations, tokens.RoleDriver, tokens.RoleOps))
	g.PUT("/:id/status", guard(d.putStatus, tokens.RoleDriver, tokens.RoleOps))
	g.GET("/:id", guard(d.getDriver, tokens.RoleDriver, tokens.RoleOps))
	g.GET("/:id/commands", guard(d.pollCommands, tokens.RoleDriver, tokens.RoleOps))
	g.POST("/:id/commands/:cmd/ack", guard(d.ackCommand, tokens.RoleDriver, tokens.RoleOps))
}

// driverHandlers serve the REST side of drivers: pings, status, nearby
// search, and the long-polled command channel (commands.go).
type driverHandlers struct {
	drivers  driverService  // nil: no driver service (a panic, 500)
	cmds     driverCommands // nil: no command channel (503)
	polls    CommandPolls   // nil: no long-poll of commands (503)
	maxBody  int64
	draining <-chan struct{}
	waiting  prometheus.Gauge // command long-polls waiting now (hextrack_connections)
}

// postLocations ingests one ping or a batch. A single invalid ping is a 400
// carrying its reason as the code; in a batch each rejection is reported by
// index and the rest applies, unless nothing at all was acceptable (400).
func (s *driverHandlers) postLocations(c echo.Context) error {
	if err := selfDriver(c); err != nil {
		return err
	}
	// Read into a pooled buffer (as readBody reads): the decoded pings
	// keep no reference to the body.
	buf := pingBodies.Get().(*bytes.Buffer)
	_, err := buf.ReadFrom(io.LimitReader(c.Request().Body, s.maxBody+1))
	if err := bodyErr(err, buf.Len(), s.maxBody); err != nil {
		putPingBody(buf)
		return err
	}
	pings, single, err := driver.DecodePings(buf.Bytes(), s.drivers.Limits().MaxBatch)
	putPingBody(buf)
	if err != nil {
		return err
	}
	res, err := s.drivers.Ingest(c.Request().Context(), c.Param("id"), pings)
	if err != nil {
		return err
	}
	if res.Accepted == 0 && res.Duplicates == 0 && len(res.Rejected) > 0 {
		code := "invalid_pings"
		msg := "no ping in the batch was acceptable"
		if single {
			code = res.Rejected[0].Reason
			msg = "ping rejected: " + code
		}
		return &Error{Status: http.StatusBadRequest, Code: code, Message: msg, Details: res}
	}
	return c.JSON(http.StatusOK, res)
}

type statusRequest struct {
	Status string `json:"status"`
}

func (s *driverHandlers) putStatus(c echo.Context) error {
	if err := selfDriver(c); err != nil {
		return err
	}
	var r statusRequest
	if err := bindJSON(c, &r); err != nil {
		return err
	}
	st, err := s.drivers.SetStatus(c.Request().Context(), c.Param("id"), r.Status)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *driverHandlers) getDriver(c echo.Context) error {
	if err := selfDriver(c); err != nil {
		return err
	}
	st, err := s.drivers.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *driverHandlers) nearby(c echo.Context) error {
	q := driver.NearbyQuery{}
	var err error
	if q.Center.Lat, err = floatParam(c, "lat", true); err != nil {
		return err
	}
	if q.Center.Lng, err = floatParam(c, "lng", true); err != nil {
		return err
	}
	if q.RadiusM, err = floatParam(c, "radius_m", false); err != nil {
		return err
	}
	lim, err := floatParam(c, "limit", false)
	if err != nil {
		return err
	}
	q.Limit = int(lim)
	list, err := s.drivers.Nearby(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"drivers": list})
}

// floatParam parses a numeric query parameter.
func floatParam(c echo.Context, name string, required bool) (float64, error) {
	v := c.QueryParam(name)
	if v == "" {
		if required {
			return 0, &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: name + " is required"}
		}
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: name + " must be a number"}
	}
	return f, nil
}
