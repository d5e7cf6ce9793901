package tripredis

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// Chat posts trip messages (trip.message events; no transition).
type Chat struct {
	*base
	store *Store
}

// PostMessage appends a trip.message to the trip's feed. Riders post on
// their trips, drivers on the trips assigned to them, ops on any; not once
// the trip is over (a retry of a message already posted still answers with
// its ID). Messages are not transitions: the version does not change.
func (s *Chat) PostMessage(ctx context.Context, id string, a trip.Actor, r trip.MessageRequest) (trip.Posted, error) {
	if err := trip.CheckID(id); err != nil {
		return trip.Posted{}, err
	}
	text, err := trip.ValidateMessage(r, s.cfg.MaxMessageLen)
	if err != nil {
		return trip.Posted{}, err
	}
	if a.Role != trip.RoleRider && a.Role != trip.RoleDriver && a.Role != trip.RoleOps {
		return trip.Posted{}, fmt.Errorf("%w: %s may not post messages", trip.ErrForbidden, roleName(a.Role))
	}
	t, err := s.store.Get(ctx, id)
	if err != nil {
		return trip.Posted{}, err
	}
	if !trip.CanSee(a, t) {
		return trip.Posted{}, fmt.Errorf("%w: trip %s is not yours", trip.ErrForbidden, id)
	}
	now := s.now()
	m := trip.Message{TripID: id, ClientID: r.ClientID, From: trip.Sender{Role: a.Role, ID: a.ID}, Text: text, SentAt: now.UTC()}
	data, _ := json.Marshal(m)
	fkeys, fargs, err := s.feed.PublishParams(ctx, feed.Publication{Topic: trip.Topic(id), Type: trip.EventMessage, Data: data,
		Key: "msg\x00" + a.Role + "\x00" + a.ID + "\x00" + r.ClientID, TS: now})
	if err != nil {
		return trip.Posted{}, err
	}
	res, err := runScript(ctx, s.rdb, messageScript, append([]string{tripKey(s.cfg.Prefix, id)}, fkeys...), fargs...)
	if err != nil {
		return trip.Posted{}, fmt.Errorf("trip: message %s: %w", id, err)
	}
	switch res[0] {
	case "ok":
		return trip.Posted{EventID: res[1]}, nil
	case "dup":
		return trip.Posted{EventID: res[1], Duplicate: true}, nil
	case "notfound":
		return trip.Posted{}, fmt.Errorf("%w: %s", trip.ErrNotFound, id)
	case "conflict":
		return trip.Posted{}, &trip.TransitionError{Action: "message", Current: res[1], Version: t.Version}
	}
	return trip.Posted{}, fmt.Errorf("trip: message %s: unexpected reply %v", id, res)
}
