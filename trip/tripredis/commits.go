package tripredis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// commits is the one way a trip's status changes: it runs the transition
// script (status, version, fields and exactly one durable event together),
// counts every committed change and tells it to the observers, then to the
// hook. Service embeds it (SetHook, Observe, Changed).
type commits struct {
	*base
	hook      trip.Hook       // dispatch; nil: none
	observers []trip.Observer // told before the hook
}

// SetHook installs the dispatch hook. Call before serving.
func (s *commits) SetHook(h trip.Hook) { s.hook = h }

// Observe adds an observer of every change. Call before serving.
func (s *commits) Observe(o trip.Observer) { s.observers = append(s.observers, o) }

// Changed reports a change that another package's script made to a trip
// atomically with its own keys (payment: awaiting_payment → requested or
// cancelled): it is counted and told to the observers and the hook as if
// the Service had made it.
func (s *commits) Changed(ctx context.Context, c trip.Change) {
	if c.At.IsZero() {
		c.At = s.now()
	}
	s.count(c.Action, c.To)
	s.notify(ctx, c)
}

// notify tells the observers, then the hook, about a change.
func (s *commits) notify(ctx context.Context, c trip.Change) {
	for _, o := range s.observers {
		o.TripChanged(context.WithoutCancel(ctx), c)
	}
	if s.hook != nil {
		s.hook.TripChanged(context.WithoutCancel(ctx), c)
	}
}

// checkAccept asks the hook whether driver a may accept tripID (the
// system, e.g. a test or an admin tool, always may).
func (s *commits) checkAccept(ctx context.Context, tripID string, a trip.Actor) error {
	if s.hook == nil || a.Role != trip.RoleDriver {
		return nil
	}
	return s.hook.CheckAccept(ctx, tripID, a.ID)
}

// count hands a committed change to the Transition metric.
func (s *commits) count(action, to string) {
	if s.metrics.Transition != nil {
		s.metrics.Transition(action, to)
	}
}

// transitionResult is what a committed transition reports.
type transitionResult struct {
	eventID   string
	version   int64
	from      string
	oldDriver string
}

// transition runs transitionScript. extra goes into the event data besides
// trip_id, status, from and version.
func (s *commits) transition(ctx context.Context, t trip.Trip, a trip.Actor, action string, from []string, to, requiredDriver string,
	ifMatch int64, extra map[string]any, pairs ...string) (transitionResult, error) {
	now := s.now()
	status := to
	if status == "" {
		status = t.Status // an address change: the event says the current status
	}
	body := map[string]any{"trip_id": t.ID}
	if to != "" {
		body["status"] = to
	}
	for k, v := range extra {
		body[k] = v
	}
	rest, _ := json.Marshal(body)
	// The script fills version and from; they come first so that no text of
	// the body (an address) can be taken for a placeholder.
	data := `{"version":__VERSION__,"from":"__FROM__",` + string(rest[1:])
	typ := trip.EventType(action, to)
	fkeys, fargs, err := s.feed.PublishParams(ctx, feed.Publication{Topic: trip.Topic(t.ID), Type: typ, TS: now})
	if err != nil {
		return transitionResult{}, err
	}
	allowed := "|" + strings.Join(from, "|") + "|"
	ver := ""
	if ifMatch > 0 {
		ver = strconv.FormatInt(ifMatch, 10)
	}
	args := []any{allowed, to, requiredDriver, ver, nowMS(now), s.ttl(), data, len(pairs) / 2}
	for _, p := range pairs {
		args = append(args, p)
	}
	res, err := runScript(ctx, s.rdb, transitionScript, append([]string{tripKey(s.cfg.Prefix, t.ID)}, fkeys...), append(args, fargs...)...)
	if err != nil {
		return transitionResult{}, fmt.Errorf("trip: %s %s: %w", action, t.ID, err)
	}
	switch res[0] {
	case "ok":
		v, _ := strconv.ParseInt(res[2], 10, 64)
		s.count(action, status)
		c := trip.Change{Trip: t, Action: action, From: res[3], To: status, OldDriver: res[4], Actor: a, EventID: res[1], At: now}
		s.notify(ctx, c) // observers (ops index, live ETA), then dispatch
		return transitionResult{eventID: res[1], version: v, from: res[3], oldDriver: res[4]}, nil
	case "notfound":
		return transitionResult{}, fmt.Errorf("%w: %s", trip.ErrNotFound, t.ID)
	case "driver":
		return transitionResult{}, fmt.Errorf("%w: trip %s is not assigned to you", trip.ErrForbidden, t.ID)
	case "conflict":
		v, _ := strconv.ParseInt(res[2], 10, 64)
		return transitionResult{}, &trip.TransitionError{Action: action, Current: res[1], Version: v}
	case "stale":
		v, _ := strconv.ParseInt(res[2], 10, 64)
		return transitionResult{}, &trip.VersionError{Want: ifMatch, Current: v}
	}
	return transitionResult{}, fmt.Errorf("trip: %s %s: unexpected reply %v", action, t.ID, res)
}
