package sim

import (
	"errors"
	"net/http"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/sim/driverlink"
)

// authGate holds a driver's uploads back after the server refused its
// token (401: restarted with a new secret, revoked): the next tick would
// be refused too, so it waits driverlink.AuthBackoff, doubling, instead of
// the fleet making hundreds of errors a second.
type authGate struct {
	until time.Time
	fails int
}

func (g *authGate) open(now time.Time) bool { return !now.Before(g.until) }

// result records an upload's outcome at now.
func (g *authGate) result(now time.Time, err error) {
	var ae *client.Error
	switch {
	case err == nil:
		g.fails = 0
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		g.fails++
		g.until = now.Add(driverlink.AuthBackoff(g.fails))
	}
}
