package sqlstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

func TestAPIKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)
		hash := strings.Repeat("ab", 32)
		a := archive.APIKey{ID: "keya", Name: "billing", Hash: hash, Scopes: []string{"trips:read", "webhooks:manage"},
			CreatedAt: t0, ExpiresAt: t0.Add(90 * 24 * time.Hour)}
		b := archive.APIKey{ID: "keyb", Name: "analytics", Hash: hash, Scopes: []string{"ops"}, CreatedAt: t0.Add(time.Second)}
		for _, k := range []archive.APIKey{a, b} {
			if err := s.CreateAPIKey(ctx, k); err != nil {
				t.Fatalf("CreateAPIKey %s: %v", k.ID, err)
			}
		}
		if err := s.CreateAPIKey(ctx, a); err == nil {
			t.Fatal("CreateAPIKey with a taken id: no error")
		}
		if err := s.CreateAPIKey(ctx, archive.APIKey{ID: "bad id", Name: "x", Hash: hash, Scopes: []string{"ops"}, CreatedAt: t0}); !errors.Is(err, archive.ErrInvalid) {
			t.Fatalf("CreateAPIKey with a bad id = %v, want ErrInvalid", err)
		}

		got, err := s.APIKey(ctx, "keya")
		if err != nil {
			t.Fatalf("APIKey: %v", err)
		}
		if got.Name != a.Name || got.Hash != hash || !slices.Equal(got.Scopes, a.Scopes) || !got.CreatedAt.Equal(t0) ||
			!got.ExpiresAt.Equal(a.ExpiresAt) || !got.RevokedAt.IsZero() || !got.LastUsedAt.IsZero() {
			t.Fatalf("APIKey = %+v, want %+v", got, a)
		}
		if _, err := s.APIKey(ctx, "nope"); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("APIKey(unknown) = %v, want ErrNotFound", err)
		}

		// Touch: a later time wins, an older one is ignored.
		used := t0.Add(time.Hour)
		for _, at := range []time.Time{used, t0.Add(time.Minute)} {
			if err := s.TouchAPIKey(ctx, "keya", at); err != nil {
				t.Fatalf("TouchAPIKey: %v", err)
			}
		}
		if err := s.TouchAPIKey(ctx, "nope", used); err != nil {
			t.Fatalf("TouchAPIKey(unknown) = %v, want nil", err)
		}

		// Revoke: the first time is kept; unknown ids are not found.
		rev := t0.Add(2 * time.Hour)
		if err := s.RevokeAPIKey(ctx, "keya", rev); err != nil {
			t.Fatalf("RevokeAPIKey: %v", err)
		}
		if err := s.RevokeAPIKey(ctx, "keya", rev.Add(time.Hour)); err != nil {
			t.Fatalf("RevokeAPIKey again: %v", err)
		}
		if err := s.RevokeAPIKey(ctx, "nope", rev); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("RevokeAPIKey(unknown) = %v, want ErrNotFound", err)
		}

		list, err := s.APIKeys(ctx)
		if err != nil {
			t.Fatalf("APIKeys: %v", err)
		}
		if len(list) != 2 || list[0].ID != "keyb" || list[1].ID != "keya" {
			t.Fatalf("APIKeys = %+v, want keyb then keya (newest first)", list)
		}
		if k := list[1]; !k.LastUsedAt.Equal(used) || !k.RevokedAt.Equal(rev) {
			t.Fatalf("keya last used %v revoked %v, want %v and %v", k.LastUsedAt, k.RevokedAt, used, rev)
		}
		if k := list[0]; !k.ExpiresAt.IsZero() || !k.RevokedAt.IsZero() || !slices.Equal(k.Scopes, []string{"ops"}) {
			t.Fatalf("keyb = %+v, want no expiry, not revoked, scope ops", k)
		}
	})
}
