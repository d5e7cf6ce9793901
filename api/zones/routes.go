package zones

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/api/sse"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/zone"
)

// Service is what the routes call (zoneredis.Store).
type Service interface {
	Create(ctx context.Context, in zone.Input) (zone.Zone, error)
	List(ctx context.Context) ([]zone.Zone, error)
	Get(ctx context.Context, id string) (zone.Zone, error)
	Update(ctx context.Context, id string, in zone.Input) (zone.Zone, error)
	Delete(ctx context.Context, id string) error
	Drivers(ctx context.Context, id string) ([]zone.Inside, error)
}

// Feed reads a zone's durable events, waiting for new ones
// (feedredis.Broker).
type Feed interface {
	Wait(ctx context.Context, topic, afterID string, limit int, d time.Duration) ([]feed.Event, string, error)
}

// Routes are the zone routes.
type Routes struct {
	svc      Service
	feed     Feed
	draining <-chan struct{}
}

// New returns the routes over svc and feed; nil svc: every route answers
// feed.ErrUnavailable (503).
func New(svc Service, f Feed) *Routes { return &Routes{svc: svc, feed: f} }

// guard is caller.Guard for ops, answering 503 when the routes have no
// service.
func (r *Routes) guard(h echo.HandlerFunc) echo.HandlerFunc {
	return caller.Guard(func(c echo.Context) error {
		if r.svc == nil || r.feed == nil {
			return fmt.Errorf("%w: zones are not configured on this node", feed.ErrUnavailable)
		}
		return h(c)
	}, tokens.RoleOps)
}

// SetDraining gives the node's drain signal (api.Server.Draining): event
// streams end on it so the client reconnects elsewhere. Call it before
// serving.
func (r *Routes) SetDraining(d <-chan struct{}) { r.draining = d }

// Register adds the routes to e.
func (r *Routes) Register(e *echo.Echo) {
	ops := r.guard
	e.POST("/v1/zones", ops(r.create))
	e.GET("/v1/zones", ops(r.list))
	e.GET("/v1/zones/:id", ops(r.get))
	e.PATCH("/v1/zones/:id", ops(r.update))
	e.DELETE("/v1/zones/:id", ops(r.remove))
	e.GET("/v1/zones/:id/drivers", ops(r.drivers))
	e.GET("/v1/zones/:id/events", ops(r.events))
}

// maxBody bounds a zone body: 1,000 vertices are about 40 KB of GeoJSON.
const maxBody = 256 << 10

func bind(c echo.Context) (zone.Input, error) {
	var in zone.Input
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, fmt.Errorf("%w: body: %w", zone.ErrInvalid, err)
	}
	return in, nil
}

func (r *Routes) create(c echo.Context) error {
	in, err := bind(c)
	if err != nil {
		return err
	}
	z, err := r.svc.Create(c.Request().Context(), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/zones/"+z.ID)
	return c.JSON(http.StatusCreated, z)
}

func (r *Routes) list(c echo.Context) error {
	zs, err := r.svc.List(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"zones": zs})
}

func (r *Routes) get(c echo.Context) error {
	z, err := r.svc.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, z)
}

func (r *Routes) update(c echo.Context) error {
	in, err := bind(c)
	if err != nil {
		return err
	}
	z, err := r.svc.Update(c.Request().Context(), c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, z)
}

func (r *Routes) remove(c echo.Context) error {
	if err := r.svc.Delete(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (r *Routes) drivers(c echo.Context) error {
	ds, err := r.svc.Drivers(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"zone_id": c.Param("id"), "drivers": ds})
}

// Stream timings: a wait long enough to be cheap, a heartbeat under
// common proxy idle timeouts, and a bounded stream (the client resumes by
// Last-Event-ID) so no request outlives a drain by much.
const (
	streamWait  = 15 * time.Second
	streamLimit = 10 * time.Minute
	writeTO     = 10 * time.Second
)

// events streams the zone's events (zone:<id>) as SSE from Last-Event-ID
// (or ?after=; none: from the oldest retained), each frame's id the event
// id and its data the event envelope.
func (r *Routes) events(c echo.Context) error {
	id := c.Param("id")
	if _, err := r.svc.Get(c.Request().Context(), id); err != nil {
		return err
	}
	after := c.Request().Header.Get("Last-Event-ID")
	if after == "" {
		after = c.QueryParam("after")
	}
	if after != "" {
		if _, err := feed.ParseID(after); err != nil {
			return fmt.Errorf("%w: Last-Event-ID %q", zone.ErrInvalid, after)
		}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), streamLimit)
	defer cancel()
	go func() {
		select {
		case <-r.draining:
			cancel()
		case <-ctx.Done():
		}
	}()
	sse.SetHeaders(c.Response().Header())
	c.Response().WriteHeader(http.StatusOK)
	w := sse.NewWriter(c, writeTO)
	w.Retry(2 * time.Second)
	if w.Flush() != nil {
		return nil
	}
	topic := zone.Topic(id)
	for ctx.Err() == nil {
		evs, next, err := r.feed.Wait(ctx, topic, after, 100, streamWait)
		if err != nil {
			if ctx.Err() == nil {
				b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "unavailable", "message": "zone events are unavailable; reconnecting"}})
				w.Frame("", "error", b)
				_ = w.Flush()
			}
			return nil
		}
		for _, e := range evs {
			b, err := json.Marshal(e)
			if err != nil {
				return nil
			}
			w.Frame(e.ID, e.Type, b)
		}
		if len(evs) == 0 {
			w.Comment("hb")
		}
		if next != "" {
			after = next
		}
		if w.Flush() != nil {
			return nil
		}
	}
	return nil
}
