package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/webhook"
)

// Scope is the API-key scope the routes need.
const Scope = tokens.ScopeWebhooksManage

// Service is what the routes call (webhook.Service).
type Service interface {
	Create(ctx context.Context, in webhook.Input) (webhook.Endpoint, error)
	List(ctx context.Context) ([]webhook.Endpoint, error)
	Get(ctx context.Context, id string) (webhook.Endpoint, error)
	Update(ctx context.Context, id string, in webhook.Input) (webhook.Endpoint, error)
	Delete(ctx context.Context, id string) error
	Deliveries(ctx context.Context, q webhook.LogQuery) (webhook.LogPage, error)
	Replay(ctx context.Context, id string, from webhook.ReplayFrom) (int64, error)
}

var _ Service = (*webhook.Service)(nil)

// Routes are the webhook routes (api.Routes).
type Routes struct{ svc Service }

// New returns the routes over svc; nil: every route answers
// webhook.ErrNoStore (503).
func New(svc Service) *Routes { return &Routes{svc: svc} }

// Register adds the routes to e.
func (r *Routes) Register(e *echo.Echo) {
	// The guard on each route, not on a group: a group's middleware comes
	// with a catch-all route of its own.
	guard := caller.RequireScope(Scope)
	const base = "/v1/webhooks/endpoints"
	e.POST(base, guard(r.create))
	e.GET(base, guard(r.list))
	e.GET(base+"/:id", guard(r.get))
	e.PATCH(base+"/:id", guard(r.update))
	e.DELETE(base+"/:id", guard(r.remove))
	e.GET(base+"/:id/deliveries", guard(r.deliveries))
	e.POST(base+"/:id/replay", guard(r.replay))
}

// endpointJSON is an endpoint as the routes show it: never its secret but
// in the creation answer.
type endpointJSON struct {
	ID           string     `json:"id"`
	URL          string     `json:"url"`
	Filter       []string   `json:"filter"`
	Enabled      bool       `json:"enabled"`
	Status       string     `json:"status"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	Secret       string     `json:"secret,omitempty"`
}

func show(e webhook.Endpoint) endpointJSON {
	j := endpointJSON{ID: e.ID, URL: e.URL, Filter: e.Filter, Enabled: e.Enabled, Status: e.Status(),
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
	if !e.FailingSince.IsZero() {
		t := e.FailingSince
		j.FailingSince = &t
	}
	return j
}

// input is a create or PATCH body.
type input struct {
	URL     *string   `json:"url"`
	Filter  *[]string `json:"filter"`
	Enabled *bool     `json:"enabled"`
}

func bind(c echo.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", webhook.ErrInvalid, err)
	}
	return nil
}

func (r *Routes) service() (Service, error) {
	if r.svc == nil {
		return nil, webhook.ErrNoStore
	}
	return r.svc, nil
}

func (r *Routes) create(c echo.Context) error {
	svc, err := r.service()
	if err != nil {
		return err
	}
	var in input
	if err := bind(c, &in); err != nil {
		return err
	}
	e, err := svc.Create(c.Request().Context(), webhook.Input(in))
	if err != nil {
		return err
	}
	j := show(e)
	j.Secret = e.Secret.Reveal() // shown this once
	return c.JSON(http.StatusCreated, j)
}

func (r *Routes) list(c echo.Context) error {
	svc, err := r.service()
	if err != nil {
		return err
	}
	es, err := svc.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]endpointJSON, len(es))
	for i, e := range es {
		out[i] = show(e)
	}
	return c.JSON(http.StatusOK, map[string]any{"endpoints": out})
}

func (r *Routes) get(c echo.Context) error {
	svc, err := r.service()
	if err != nil {
		return err
	}
	e, err := svc.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, show(e))
}

func (r *Routes) update(c echo.Context) error {
	svc, err := r.service()
	if err != nil {
		return err
	}
	var in input
	if err := bind(c, &in); err != nil {
		return err
	}
	e, err := svc.Update(c.Request().Context(), c.Param("id"), webhook.Input(in))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, show(e))
}

func (r *Routes) remove(c echo.Context) error {
	svc, err := r.service()
	if err != nil {
		return err
	}
	if err := svc.Delete(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// deliveryJSON is one row of the delivery log.
type deliveryJSON struct {
	EventID     string          `json:"event_id"`
	Topic       string          `json:"topic"`
	Type        string          `json:"type"`
	TripID      string          `json:"trip_id,omitempty"`
	EventTS     time.Time       `json:"event_ts"`
	State       string          `json:"state"`
	Attempts    int64           `json:"attempts"`
	StatusCode  int             `json:"status_code,omitempty"`
	LatencyMS   float64         `json:"latency_ms"`
	Error       string          `json:"error,omitempty"`
	Response    string          `json:"response,omitempty"`
	LastAttempt *time.Time      `json:"last_attempt_at,omitempty"`
	Done        *time.Time      `json:"done_at,omitempty"`
	Replays     int64           `json:"replays"`
	Data        json.RawMessage `json:"-"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (r *Routes) deliveries(c echo.Context) error {
	svc, err := r.service()
	if err != nil {
		return err
	}
	q := webhook.LogQuery{EndpointID: c.Param("id"), Cursor: c.QueryParam("cursor")}
	if l := c.QueryParam("limit"); l != "" {
		if q.Limit, err = strconv.Atoi(l); err != nil || q.Limit <= 0 {
			return fmt.Errorf("%w: limit must be 1-200", webhook.ErrInvalid)
		}
	}
	page, err := svc.Deliveries(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := make([]deliveryJSON, len(page.Deliveries))
	for i, d := range page.Deliveries {
		out[i] = deliveryJSON{EventID: d.Event.ID, Topic: d.Event.Topic, Type: d.Event.Type, TripID: d.TripID,
			EventTS: d.Event.TS, State: d.State, Attempts: d.Attempts, StatusCode: d.StatusCode,
			LatencyMS: float64(d.Latency.Microseconds()) / 1000, Error: d.Error, Response: d.Response,
			LastAttempt: optTime(d.LastAttempt), Done: optTime(d.Done), Replays: d.Gen}
	}
	return c.JSON(http.StatusOK, map[string]any{"deliveries": out, "next_cursor": page.Next})
}

func (r *Routes) replay(c echo.Context) error {
	svc, err := r.service()
	if err != nil {
		return err
	}
	var in struct {
		FromEvent string     `json:"from_event"`
		FromTime  *time.Time `json:"from_time"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	from := webhook.ReplayFrom{EventID: in.FromEvent}
	if in.FromTime != nil {
		from.Time = *in.FromTime
	}
	n, err := svc.Replay(c.Request().Context(), c.Param("id"), from)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"queued": n})
}
