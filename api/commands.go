package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/feed"
)

type commandsReply struct {
	Commands []feed.Event `json:"commands"`
	// Next is the cursor of the following poll (after=).
	Next string `json:"next"`
}

// pollCommands is the command channel of REST drivers: commands after
// `after` (default: after the driver's last ack), at most `limit` (≤ 1000),
// waiting up to `wait` seconds (≤ 30) when there are none. A cursor older
// than the feed retains is a 410 whose details carry the current position.
func (s *driverHandlers) pollCommands(c echo.Context) error {
	if err := selfDriver(c); err != nil {
		return err
	}
	if s.cmds == nil || s.polls == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the driver channel is not served by this node"}
	}
	id := c.Param("id")
	q := c.QueryParams()
	limit, wait, err := pollParams(q)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	go func() {
		select {
		case <-s.draining: // a long-poll answers at once when the node drains
			cancel()
		case <-ctx.Done():
		}
	}()
	after := q.Get("after")
	if after == "" {
		var err error
		if after, err = s.cmds.ResumeFrom(ctx, id, ""); err != nil {
			return err
		}
	} else if _, err := feed.ParseID(after); err != nil {
		return err
	}
	s.waiting.Inc()
	evs, next, err := s.polls.Poll(ctx, id, after, limit, wait)
	s.waiting.Dec()
	if errors.Is(err, feed.ErrTrimmed) || errors.Is(err, feed.ErrUnknownID) {
		ae, _ := toError(err)
		pos, perr := s.polls.Position(c.Request().Context(), id)
		if perr != nil {
			return perr
		}
		ae.Details = map[string]string{"position": pos}
		return ae
	}
	if err != nil {
		if ctx.Err() == nil || c.Request().Context().Err() != nil {
			return err
		}
		evs, next = []feed.Event{}, after // drained: poll again elsewhere
	}
	if evs == nil {
		evs = []feed.Event{}
	}
	return c.JSON(http.StatusOK, commandsReply{Commands: evs, Next: next})
}

// ackCommand records that the driver handled every command up to cmd.
func (s *driverHandlers) ackCommand(c echo.Context) error {
	if err := selfDriver(c); err != nil {
		return err
	}
	if s.cmds == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the driver channel is not served by this node"}
	}
	acked, err := s.cmds.Ack(c.Request().Context(), c.Param("id"), c.Param("cmd"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"acked": acked})
}
