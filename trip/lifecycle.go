package trip

import "slices"

// Roles of an Actor. RoleSystem is the server itself (dispatch timeouts,
// payment webhooks, arrival detection).
const (
	RoleRider  = "rider"
	RoleDriver = "driver"
	RoleOps    = "ops"
	RoleViewer = "viewer"
	RoleSystem = "system"
)

// Actor is who asks: a role and an ID (rider, driver or ops user). Viewer
// actors are scoped to Trip by the share link Share.
type Actor struct {
	Role  string
	ID    string
	Trip  string // viewer: the one trip the share link opens
	Share string // viewer: the share link's ID (revocable)
}

// Actions of the lifecycle.
const (
	ActAccept   = "accept"
	ActArrived  = "arrived"
	ActPickup   = "pickup"
	ActComplete = "complete"
	ActCancel   = "cancel"
	ActDecline  = "decline"
	ActReassign = "reassign"
	ActExpire   = "expire"
	ActPaid     = "payment_succeeded"
	ActUnpaid   = "payment_failed"
	ActDropoff  = "change_dropoff"
)

// Rule is one allowed transition: Role may do Action on a trip in one of
// From, which then becomes To ("" keeps the status: an address change).
// Rider and driver rules also require the trip to be theirs (a driver's
// accept requires only that the trip is requested).
type Rule struct {
	Action string
	Role   string
	From   []string
	To     string
}

var (
	beforePickup = []string{StatusAwaitingPayment, StatusRequested, StatusAssigned, StatusArrived}
	assignedOnly = []string{StatusAssigned, StatusArrived}
	nonTerminal  = []string{StatusAwaitingPayment, StatusRequested, StatusAssigned, StatusArrived, StatusInProgress}
)

// Rules is the whole lifecycle: every allowed transition per role. Anything
// not listed is refused (ErrInvalidTransition when the role may do the
// action in some other status, ErrForbidden when never).
var Rules = []Rule{
	{ActAccept, RoleDriver, []string{StatusRequested}, StatusAssigned},
	{ActAccept, RoleSystem, []string{StatusRequested}, StatusAssigned},
	{ActArrived, RoleDriver, []string{StatusAssigned}, StatusArrived},
	{ActArrived, RoleSystem, []string{StatusAssigned}, StatusArrived},
	{ActPickup, RoleDriver, []string{StatusArrived}, StatusInProgress},
	{ActComplete, RoleDriver, []string{StatusInProgress}, StatusCompleted},
	{ActComplete, RoleOps, []string{StatusInProgress}, StatusCompleted},
	// The rider cancels before pickup; ops anytime; a driver's cancel (or
	// decline) hands the trip back to dispatch.
	{ActCancel, RoleRider, beforePickup, StatusCancelled},
	{ActCancel, RoleOps, nonTerminal, StatusCancelled},
	{ActCancel, RoleDriver, assignedOnly, StatusRequested},
	{ActDecline, RoleDriver, []string{StatusAssigned}, StatusRequested},
	{ActReassign, RoleOps, assignedOnly, StatusRequested},
	{ActReassign, RoleSystem, assignedOnly, StatusRequested},
	{ActExpire, RoleSystem, []string{StatusRequested}, StatusExpired},
	{ActPaid, RoleSystem, []string{StatusAwaitingPayment}, StatusRequested},
	{ActUnpaid, RoleSystem, []string{StatusAwaitingPayment}, StatusCancelled},
	{ActDropoff, RoleRider, nonTerminal, ""},
	{ActDropoff, RoleOps, nonTerminal, ""},
}

// Statuses lists every trip status.
var Statuses = []string{StatusAwaitingPayment, StatusRequested, StatusAssigned, StatusArrived,
	StatusInProgress, StatusCompleted, StatusCancelled, StatusExpired}

// RuleFor returns the rule of action for role, ok false if role may never
// do it.
func RuleFor(action, role string) (Rule, bool) {
	for _, r := range Rules {
		if r.Action == action && r.Role == role {
			return r, true
		}
	}
	return Rule{}, false
}

// Allowed reports whether role may do action on a trip in status from, and
// the status it leads to.
func Allowed(action, role, from string) (to string, ok bool) {
	r, ok := RuleFor(action, role)
	if !ok || !slices.Contains(r.From, from) {
		return "", false
	}
	if r.To == "" {
		return from, true
	}
	return r.To, true
}

// EventType is the durable event a transition to `to` by action appends.
func EventType(action, to string) string {
	switch {
	case action == ActDropoff:
		return EventAddressChanged
	case to == StatusCancelled:
		return EventCancelled
	case to == StatusAssigned:
		return EventAssigned
	}
	return EventStatus
}

// CanSee reports whether a may read trip t (a viewer's share link must
// also be live: the store checks it).
func CanSee(a Actor, t Trip) bool {
	switch a.Role {
	case RoleOps, RoleSystem:
		return true
	case RoleRider:
		return a.ID != "" && t.RiderID == a.ID
	case RoleDriver:
		return a.ID != "" && t.DriverID == a.ID
	case RoleViewer:
		return a.Trip != "" && a.Trip == t.ID
	}
	return false
}

// Owns reports whether a's role-specific ownership holds for acting on t:
// riders their trips, drivers the trips assigned to them (any requested
// trip for accept), ops and system everything.
func Owns(a Actor, t Trip, action string) bool {
	switch a.Role {
	case RoleOps, RoleSystem:
		return true
	case RoleRider:
		return a.ID != "" && t.RiderID == a.ID
	case RoleDriver:
		if action == ActAccept || action == ActDecline && t.Status == StatusRequested {
			return a.ID != ""
		}
		return a.ID != "" && t.DriverID == a.ID
	}
	return false
}
