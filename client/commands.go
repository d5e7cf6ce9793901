package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// The driver's command channel over REST, the equal alternative to the
// WebSocket (docs/websocket.md): long-poll for commands, then acknowledge
// them. Trip actions (accept, decline, ...) are TripAction.

// CommandPage is one answer of the REST command channel.
type CommandPage struct {
	Commands []Command `json:"commands"`
	// Next is the cursor of the following poll (after=).
	Next string `json:"next"`
}

func driverPath(id string, rest ...string) string {
	p := "/v1/drivers/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// DriverCommands long-polls GET /v1/drivers/{id}/commands: the commands
// after `after` ("" = after the driver's acknowledged position), at most
// limit (0: the server's default), waiting up to wait (≤ 30 s) when there
// are none. Commands stay in the channel until acknowledged (AckCommand);
// the caller advances its cursor to Next. A cursor older than the channel
// retains is an *Error with Status 410 (see GoneCommandPosition).
//
// The client's *http.Client timeout must be longer than wait.
func (c *Client) DriverCommands(ctx context.Context, driverID, after string, limit int, wait time.Duration) (CommandPage, error) {
	p := driverPath(driverID, "commands")
	if q := pageQuery(after, limit, wait); len(q) > 0 {
		p += "?" + q.Encode()
	}
	return call[CommandPage](ctx, c, http.MethodGet, p, nil, nil)
}

// AckCommand acknowledges cmdID and every earlier command of the driver
// (they are not delivered again) and returns the stored acknowledged
// position.
func (c *Client) AckCommand(ctx context.Context, driverID, cmdID string) (string, error) {
	out, err := call[struct {
		Acked string `json:"acked"`
	}](ctx, c, http.MethodPost, driverPath(driverID, "commands", cmdID, "ack"), nil, nil)
	return out.Acked, err
}

// GoneCommandPosition returns the channel's current position carried by a
// 410 from DriverCommands: continuity could not be proven (commands were
// trimmed), so poll again after it.
func GoneCommandPosition(err error) (string, bool) {
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusGone {
		return "", false
	}
	var d struct {
		Position string `json:"position"`
	}
	if json.Unmarshal(e.Details, &d) != nil || d.Position == "" {
		return "", false
	}
	return d.Position, true
}
