package trip

import (
	"context"
	"time"
)

// Hook is told about trip changes that dispatch acts on, and may veto an
// accept. The Dispatcher implements it; tripredis.Service.SetHook
// installs it. With no hook, any driver may accept any requested trip and
// nobody is told.
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
	// At is when the change was made (the trip service clock).
	At time.Time
}
