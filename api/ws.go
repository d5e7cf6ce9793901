package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/driverws"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/trip"
)

// WSConfig tunes driver WebSockets: see driverws.Config.
type WSConfig = driverws.Config

// WebSocket close codes sent by the server: see package driverws.
const (
	CloseReconnect    = driverws.CloseReconnect
	CloseReplaced     = driverws.CloseReplaced
	CloseSlow         = driverws.CloseSlow
	CloseProtocol     = driverws.CloseProtocol
	CloseTokenExpired = driverws.CloseTokenExpired
	CloseSuspended    = driverws.CloseSuspended
)

// driverSocket serves GET /v1/drivers/:id/ws: it refuses what can be
// refused before the upgrade with a JSON error, then hands the request to
// the driver channel (package driverws).
type driverSocket struct {
	ch       *driverws.Channel
	origins  []string // besides the server's own host; the CORS list
	draining <-chan struct{}
}

// wsErrors renders an error of the services over the WebSocket: the
// code and message of the one error table (error.go).
func wsErrors(err error) (code, message string, known bool) {
	ae, known := toError(err)
	return ae.Code, ae.Message, known
}

// checkOrigin allows native apps (no Origin), the server's own host, and
// the configured origins.
func (ds *driverSocket) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return originAllowed(ds.origins, origin) // the CORS rule (cors.go)
}

// driverWS upgrades to the driver WebSocket. Everything that can be refused
// (token, driver, origin, not an upgrade) is refused before the upgrade
// with a JSON error.
func (ds *driverSocket) driverWS(c echo.Context) error {
	cl := claims(c)
	id := c.Param("id")
	if cl.Subject != id {
		return fmt.Errorf("%w: a driver may connect only as itself", ErrForbidden)
	}
	if !driver.ValidID(id) || !trip.ValidID(id) {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "driver id must be 1-64 characters of [A-Za-z0-9_-]"}
	}
	r := c.Request()
	if !websocket.IsWebSocketUpgrade(r) {
		return &Error{Status: http.StatusBadRequest, Code: "upgrade_required", Message: "this endpoint speaks WebSocket only"}
	}
	if !ds.checkOrigin(r) {
		return &Error{Status: http.StatusForbidden, Code: "origin_not_allowed", Message: "origin not allowed"}
	}
	if !ds.ch.Serving() {
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the driver channel is not served by this node"}
	}
	select {
	case <-ds.draining:
		return &Error{Status: http.StatusServiceUnavailable, Code: "draining", Message: "node is draining; connect to another"}
	default:
	}
	if err := ds.ch.Admit(r.Context(), id); err != nil {
		return err
	}
	ds.ch.Serve(c, id, tokenExpiry(cl))
	return nil
}
