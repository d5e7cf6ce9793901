package webhook

import (
	"context"
	"fmt"
	"time"
)

// Store keeps endpoints and their delivery log (webhook/webhooksql).
type Store interface {
	CreateEndpoint(ctx context.Context, e Endpoint) error
	Endpoints(ctx context.Context) ([]Endpoint, error)
	Endpoint(ctx context.Context, id string) (Endpoint, error)
	// UpdateEndpoint stores e's URL, filter and enabled flag; enabling
	// clears Paused and FailingSince.
	UpdateEndpoint(ctx context.Context, e Endpoint) error
	DeleteEndpoint(ctx context.Context, id string) error
	Deliveries(ctx context.Context, q LogQuery) (LogPage, error)
	// Replay queues again, for endpoint e, every archived trip event its
	// filter matches from the starting point on; it returns how many.
	Replay(ctx context.Context, e Endpoint, from ReplayFrom) (int64, error)
}

// Kicker starts the deliveries of an endpoint's queues (the runner,
// webhook/webhookriver): after a replay or the endpoint enabled again.
type Kicker interface {
	Kick(ctx context.Context, endpointID string) error
}

// LogQuery pages an endpoint's delivery log, newest event first.
type LogQuery struct {
	EndpointID string
	// Cursor is the previous page's Next ("": the first page).
	Cursor string
	// Limit: 1–200; 0 means 50.
	Limit int
}

// LogPage is one page of the log.
type LogPage struct {
	Deliveries []Delivery
	// Next is the cursor of the following page ("": none).
	Next string
}

// ReplayFrom is where a replay starts: an event ID (inclusive, compared
// by time then sequence across trips) or a time (events at or after it).
type ReplayFrom struct {
	EventID string
	Time    time.Time
}

// Service is the endpoints' use cases behind the routes.
type Service struct {
	Store  Store
	Policy Policy
	// Kicker; nil: the runner's periodic sweep picks the work up.
	Kicker Kicker
	// Now; nil means time.Now.
	Now func() time.Time
}

// Input is what creating or changing an endpoint gives; nil fields are
// left as they are (a new endpoint: filter ["*"], enabled).
type Input struct {
	URL     *string
	Filter  *[]string
	Enabled *bool
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Create checks in and stores a new endpoint with a new secret; the
// returned endpoint carries the secret, to be shown once.
func (s *Service) Create(ctx context.Context, in Input) (Endpoint, error) {
	if s.Store == nil {
		return Endpoint{}, ErrNoStore
	}
	if in.URL == nil {
		return Endpoint{}, fmt.Errorf("%w: url is required", ErrInvalidURL)
	}
	now := s.now().UTC()
	e := Endpoint{ID: NewID(), Secret: NewSecret(), Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := s.apply(ctx, &e, in); err != nil {
		return Endpoint{}, err
	}
	if err := s.Store.CreateEndpoint(ctx, e); err != nil {
		return Endpoint{}, err
	}
	return e, nil
}

func (s *Service) apply(ctx context.Context, e *Endpoint, in Input) error {
	if in.URL != nil {
		u, err := s.Policy.CheckURL(ctx, *in.URL)
		if err != nil {
			return err
		}
		e.URL = u.String()
	}
	if in.Filter != nil || e.Filter == nil {
		var pats []string
		if in.Filter != nil {
			pats = *in.Filter
		}
		f, err := ParseFilter(pats)
		if err != nil {
			return err
		}
		e.Filter = f
	}
	if in.Enabled != nil {
		e.Enabled = *in.Enabled
	}
	return nil
}

// List returns every endpoint, oldest first (secrets are not shown by
// the routes).
func (s *Service) List(ctx context.Context) ([]Endpoint, error) {
	if s.Store == nil {
		return nil, ErrNoStore
	}
	return s.Store.Endpoints(ctx)
}

// Get returns one endpoint.
func (s *Service) Get(ctx context.Context, id string) (Endpoint, error) {
	if s.Store == nil {
		return Endpoint{}, ErrNoStore
	}
	return s.Store.Endpoint(ctx, id)
}

// Update changes an endpoint. Setting enabled=true on a paused endpoint
// resumes it: its queued deliveries are sent again.
func (s *Service) Update(ctx context.Context, id string, in Input) (Endpoint, error) {
	e, err := s.Get(ctx, id)
	if err != nil {
		return Endpoint{}, err
	}
	if err := s.apply(ctx, &e, in); err != nil {
		return Endpoint{}, err
	}
	e.UpdatedAt = s.now().UTC()
	if in.Enabled != nil && *in.Enabled {
		e.Paused, e.FailingSince = false, time.Time{}
	}
	if err := s.Store.UpdateEndpoint(ctx, e); err != nil {
		return Endpoint{}, err
	}
	if e.Enabled {
		s.kick(ctx, e.ID)
	}
	return e, nil
}

// Delete removes an endpoint and its delivery log.
func (s *Service) Delete(ctx context.Context, id string) error {
	if s.Store == nil {
		return ErrNoStore
	}
	return s.Store.DeleteEndpoint(ctx, id)
}

// Deliveries pages an endpoint's delivery log.
func (s *Service) Deliveries(ctx context.Context, q LogQuery) (LogPage, error) {
	if _, err := s.Get(ctx, q.EndpointID); err != nil {
		return LogPage{}, err
	}
	return s.Store.Deliveries(ctx, q)
}

// Replay queues an endpoint's matching archived events again from a
// starting point; each is delivered again (same webhook-id), in each
// trip's order.
func (s *Service) Replay(ctx context.Context, id string, from ReplayFrom) (int64, error) {
	if (from.EventID == "") == from.Time.IsZero() {
		return 0, fmt.Errorf("%w: give exactly one of from_event and from_time", ErrInvalid)
	}
	e, err := s.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	n, err := s.Store.Replay(ctx, e, from)
	if err != nil {
		return 0, err
	}
	s.kick(ctx, id)
	return n, nil
}

// kick asks the runner to start at once; if it cannot, its periodic
// sweep will.
func (s *Service) kick(ctx context.Context, id string) {
	if s.Kicker != nil {
		_ = s.Kicker.Kick(ctx, id)
	}
}
