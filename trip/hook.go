package trip

import (
	"context"
	"time"
)

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

// Observer is told about every trip change (the ops index, live ETAs)
// before the Hook. Like the hook it runs on the request path, after the
// change was committed, and must be quick; it cannot veto anything.
type Observer interface {
	TripChanged(ctx context.Context, c Change)
}

// Change describes one trip change for a Hook or an Observer.
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
	// At is when the change was made (the Service clock).
	At time.Time
}

// changes fans a committed change out: to the observers, then the hook.
type changes struct {
	hook      Hook       // dispatch; nil: none
	observers []Observer // told before the hook
}

// SetHook installs the dispatch hook. Call before serving.
func (s *changes) SetHook(h Hook) { s.hook = h }

// Observe adds an observer of every change. Call before serving.
func (s *changes) Observe(o Observer) { s.observers = append(s.observers, o) }

// Changed reports a change that another package's script made to a trip
// atomically with its own keys (payment: awaiting_payment → requested or
// cancelled): it is counted and told to the observers and the hook as if
// the Service had made it.
func (s *Service) Changed(ctx context.Context, c Change) {
	if c.At.IsZero() {
		c.At = s.now()
	}
	s.count(c.Action, c.To)
	s.notify(ctx, c)
}

// notify tells the observers, then the hook, about a change.
func (s *changes) notify(ctx context.Context, c Change) {
	for _, o := range s.observers {
		o.TripChanged(context.WithoutCancel(ctx), c)
	}
	if s.hook != nil {
		s.hook.TripChanged(context.WithoutCancel(ctx), c)
	}
}

// checkAccept asks the hook whether driver a may accept tripID (the
// system, e.g. a test or an admin tool, always may).
func (s *changes) checkAccept(ctx context.Context, tripID string, a Actor) error {
	if s.hook == nil || a.Role != RoleDriver {
		return nil
	}
	return s.hook.CheckAccept(ctx, tripID, a.ID)
}
