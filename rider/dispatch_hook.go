package rider

import "context"

// Hook is told about trip changes that dispatch acts on, and may veto an
// accept. The Dispatcher implements it; Service.SetHook installs it. With
// no hook, any driver may accept any requested trip and nobody is told.
type Hook interface {
	// TripChanged runs after a trip was created or made a transition (or
	// an address change), with the trip as it was before and the change.
	// It must be quick: it runs on the request path.
	TripChanged(ctx context.Context, c Change)
	// CheckAccept returns an error (wrapping ErrForbidden or
	// ErrInvalidTransition) when driverID may not accept tripID now, e.g.
	// because the trip was offered to someone else.
	CheckAccept(ctx context.Context, tripID, driverID string) error
}

// Change describes one trip change for a Hook.
type Change struct {
	// Trip is the trip before the change (after it, for ActCreate).
	Trip Trip
	// Action is the lifecycle action (ActCreate for a new trip).
	Action string
	// From and To are the statuses before and after (equal for an address
	// change).
	From, To string
	// OldDriver is the trip's driver before the change ("" if none).
	OldDriver string
	// Actor is who made the change.
	Actor Actor
	// EventID is the durable event the change appended to the trip's feed.
	EventID string
}

// SetHook installs the dispatch hook. Call before serving.
func (s *Service) SetHook(h Hook) { s.hook = h }

// notify tells the hook about a change, if there is one.
func (s *Service) notify(ctx context.Context, c Change) {
	s.indexTrip(context.WithoutCancel(ctx), c) // ops trip index (ops_redis.go)
	if s.hook != nil {
		s.hook.TripChanged(context.WithoutCancel(ctx), c)
	}
}

// checkAccept asks the hook whether driver a may accept tripID (the
// system, e.g. a test or an admin tool, always may).
func (s *Service) checkAccept(ctx context.Context, tripID string, a Actor) error {
	if s.hook == nil || a.Role != RoleDriver {
		return nil
	}
	return s.hook.CheckAccept(ctx, tripID, a.ID)
}
