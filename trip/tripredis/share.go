package tripredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/trip"
)

// Shares manages share links: a viewer's token opens one trip until the
// link expires or is revoked.
type Shares struct {
	*base
	store *Store
}

// Share creates a share link for trip id. Its owner rider or ops may share;
// ttl zero means Config.ShareTTL, and it is capped at Config.MaxShareTTL.
func (s *Shares) Share(ctx context.Context, id string, a trip.Actor, ttl time.Duration) (trip.Share, error) {
	if err := trip.CheckID(id); err != nil {
		return trip.Share{}, err
	}
	if ttl == 0 {
		ttl = s.cfg.ShareTTL
	}
	if ttl < time.Second || ttl > s.cfg.MaxShareTTL {
		return trip.Share{}, fmt.Errorf("%w: ttl must be within [1s, %v]", trip.ErrInvalid, s.cfg.MaxShareTTL)
	}
	if err := s.mayShare(ctx, id, a); err != nil {
		return trip.Share{}, err
	}
	var b [9]byte
	_, _ = rand.Read(b[:])
	sh := trip.Share{ID: "s_" + hex.EncodeToString(b[:]), Trip: id, ExpiresAt: s.now().Add(ttl).UTC().Truncate(time.Second)}
	key := sharesKey(s.cfg.Prefix, id)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, sh.ID, sh.ExpiresAt.UnixMilli())
		p.Expire(ctx, key, max(s.cfg.MaxShareTTL, s.cfg.TripTTL))
		return nil
	})
	if err != nil {
		return trip.Share{}, fmt.Errorf("trip: share %s: %w", id, err)
	}
	return sh, nil
}

func (s *Shares) mayShare(ctx context.Context, id string, a trip.Actor) error {
	if a.Role != trip.RoleRider && a.Role != trip.RoleOps {
		return fmt.Errorf("%w: only the trip's rider or ops may share it", trip.ErrForbidden)
	}
	t, err := s.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if !trip.Owns(a, t, "share") {
		return fmt.Errorf("%w: trip %s is not yours", trip.ErrForbidden, id)
	}
	return nil
}

// Revoke revokes share link shareID of trip id: its token stops opening the
// trip and open streams using it close within the api's check interval. The
// revocation is kept until the link would have expired anyway.
func (s *Shares) Revoke(ctx context.Context, id string, a trip.Actor, shareID string) error {
	if err := trip.CheckID(id); err != nil {
		return err
	}
	if !trip.ValidID(shareID) {
		return fmt.Errorf("%w: share id", trip.ErrInvalid)
	}
	if err := s.mayShare(ctx, id, a); err != nil {
		return err
	}
	v, err := s.rdb.HGet(ctx, sharesKey(s.cfg.Prefix, id), shareID).Result()
	if err == redis.Nil {
		return fmt.Errorf("%w: share %s of trip %s", trip.ErrNotFound, shareID, id)
	}
	if err != nil {
		return fmt.Errorf("trip: revoke %s: %w", id, err)
	}
	ms, _ := strconv.ParseInt(v, 10, 64)
	left := time.UnixMilli(ms).Sub(s.now())
	if left <= 0 {
		return nil // expired already: the token is dead anyway
	}
	if err := s.rdb.Set(ctx, revokedKey(s.cfg.Prefix, id, shareID), "1", left+time.Minute).Err(); err != nil {
		return fmt.Errorf("trip: revoke %s: %w", id, err)
	}
	return nil
}

// CheckShare reports whether share link shareID still opens trip id: it
// must have been created by Share, not be revoked and not be expired
// (trip.ErrShareRevoked otherwise).
func (s *Shares) CheckShare(ctx context.Context, id, shareID string) error {
	if shareID == "" || !trip.ValidID(shareID) {
		return fmt.Errorf("%w: the viewer token names no share link", trip.ErrShareRevoked)
	}
	var exp *redis.StringCmd
	var rev *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exp = p.HGet(ctx, sharesKey(s.cfg.Prefix, id), shareID)
		rev = p.Exists(ctx, revokedKey(s.cfg.Prefix, id, shareID))
		return nil
	})
	if err != nil && err != redis.Nil {
		return fmt.Errorf("trip: check share %s: %w", id, err)
	}
	if exp.Err() == redis.Nil {
		return fmt.Errorf("%w: unknown share link", trip.ErrShareRevoked)
	}
	if rev.Val() > 0 {
		return fmt.Errorf("%w: the share link was revoked", trip.ErrShareRevoked)
	}
	ms, _ := strconv.ParseInt(exp.Val(), 10, 64)
	if !s.now().Before(time.UnixMilli(ms)) {
		return fmt.Errorf("%w: the share link expired", trip.ErrShareRevoked)
	}
	return nil
}
