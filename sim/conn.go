package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/sim/driverlink"
)

// Driver transports.
const (
	TransportREST  = "rest"
	TransportWS    = "ws"
	TransportMixed = "mixed" // half the drivers on each
)

// DriverConn is a driver's link to the server: pings up, commands down,
// trip actions. Both implementations speak only the client package.
type DriverConn interface {
	// Send uploads pings. REST answers synchronously (driverlink.ErrThrottled when
	// the server refused the batch with 429: keep it and retry later); the
	// WebSocket queues them in its client, which keeps them until acked
	// and resends after a reconnect, so Send never fails there.
	Send(ctx context.Context, pings []client.Ping) error
	// Commands delivers the driver's commands (offers, cancellations...),
	// each once, in order.
	Commands() <-chan client.Command
	// Ack tells the server every command up to id was handled.
	Ack(ctx context.Context, id string) error
	// Act posts a trip action (accept, decline, arrived, pickup, complete).
	Act(ctx context.Context, trip, action, reason string) (client.Snapshot, error)
	// Drop cuts the connection as a lost network would (a no-op for REST).
	Drop()
	Close()
}

var (
	_ DriverConn = (*driverlink.REST)(nil)
	_ DriverConn = (*driverlink.WS)(nil)
)

// movedOn: the server refused a trip action because the trip is no longer
// where the caller thought (cancelled, reassigned, already transitioned,
// another driver's): normal in a live system. REST answers carry the
// status; WebSocket errors only the code.
func movedOn(err error) bool {
	var ae *client.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Status {
	case http.StatusConflict, http.StatusForbidden, http.StatusNotFound, http.StatusPreconditionFailed:
		return true
	}
	switch ae.Code {
	case "conflict", "invalid_transition", "forbidden", "not_found", "version_mismatch":
		return true
	}
	return false
}

// commandTrip finds the trip a command is about in its data: "trip_id",
// "trip" (an ID or an object with "id"), or "id".
func commandTrip(data json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(m["trip_id"], &s) == nil && s != "" {
		return s
	}
	if raw, ok := m["trip"]; ok {
		if json.Unmarshal(raw, &s) == nil && s != "" {
			return s
		}
		var t struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &t) == nil && t.ID != "" {
			return t.ID
		}
	}
	if json.Unmarshal(m["id"], &s) == nil {
		return s
	}
	return ""
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
