package apikey

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

// mustStore is a fresh SQLite archive (the PostgreSQL schema of the keys
// is tested in archive/sqlstore and end to end in cmd/hextrack).
func mustStore(t *testing.T) *sqlstore.Store { return mustStoreTB(t) }

func mustStoreTB(tb testing.TB) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.Open(context.Background(), filepath.Join(tb.TempDir(), "archive.db"))
	if err != nil {
		tb.Fatalf("sqlstore.Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// clock is a settable time for the Verifier and Service.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTokenFormat(t *testing.T) {
	id, tok, hash, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	if !IsKey(tok) || !strings.HasPrefix(tok, "hx_"+id+"_") || len(tok) != len("hx_")+13+1+52 || strings.Contains(tok, "=") {
		t.Fatalf("token %q (id %q): want hx_<13>_<52>, no padding", tok, id)
	}
	gid, secret, err := parse(tok)
	if err != nil || gid != id || !secretMatches(secret, hash) || len(hash) != 64 {
		t.Fatalf("parse(%q) = %q, %q, %v; hash %q", tok, gid, secret, err, hash)
	}
	if secretMatches(strings.Repeat("a", 52), hash) {
		t.Fatal("another secret matches the hash")
	}
	_, tok2, _, _ := newToken()
	if tok2 == tok {
		t.Fatal("two keys are the same")
	}
	for _, bad := range []string{"", "hx_", "hx__", "hx_" + id, "hx_" + id + "_", tok + "a", tok[:len(tok)-1],
		"hx_" + strings.ToUpper(id) + tok[3+13:], strings.Replace(tok, "_", "-", 2), "hy" + tok[2:],
		"hx_" + id + "_" + strings.Repeat("1", 52), "hx_" + id + "_" + strings.Repeat("a", 51) + "_"} {
		if _, _, err := parse(bad); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("parse(%q) = %v, want ErrRejected: malformed", bad, err)
		}
	}
}

func TestCheckScopes(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		err  error
	}{
		{[]string{"webhooks:manage", "trips:read", "trips:read"}, []string{"trips:read", "webhooks:manage"}, nil},
		{[]string{"ops"}, []string{"ops"}, nil},
		{[]string{"trips:read", "trips:write"}, nil, ErrInvalidScope},
		{[]string{"OPS"}, nil, ErrInvalidScope},
		{[]string{""}, nil, ErrInvalidScope},
		{nil, nil, ErrInvalid},
	} {
		got, err := CheckScopes(tc.in)
		if !errors.Is(err, tc.err) || !slices.Equal(got, tc.want) {
			t.Errorf("CheckScopes(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "90d": 90 * 24 * time.Hour, "1h30m": 90 * time.Minute, "3650d": maxTTL} {
		if got, err := ParseTTL(in); err != nil || got != want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0d", "-1d", "3651d", "1.5d", "d", "90", "-1h", "0s", "forever"} {
		if _, err := ParseTTL(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTTL(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

// TestVerifier: a key authenticates as a service with its scopes; a wrong
// secret, a revoked or an expired key are refused saying why; a revoke on
// another node is seen within CacheTTL, on this node at once; last use is
// written at most once per TouchEvery.
func TestVerifier(t *testing.T) {
	ctx := context.Background()
	st := mustStore(t)
	clk := &clock{t: time.Now().UTC().Truncate(time.Millisecond)}
	v := NewVerifier(st, VerifierConfig{CacheTTL: 5 * time.Second, TouchEvery: time.Minute})
	v.now = clk.now
	here := NewService(st, v)
	here.now = clk.now
	other := NewService(st, nil) // another node: its revokes reach v through the archive only
	other.now = clk.now

	c, err := here.Create(ctx, CreateRequest{Name: "billing", Scopes: []string{"trips:read"}, ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	var cl tokens.Claims
	if err := v.Verify(ctx, c.Token, &cl); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if cl.Role != tokens.RoleService || cl.Subject != c.Key.ID || !slices.Equal(cl.Scopes, []string{"trips:read"}) ||
		cl.ExpiresAt == nil || cl.ExpiresAt.Unix() != clk.t.Add(time.Hour).Unix() {
		t.Fatalf("claims = %+v, want service %s with trips:read expiring in 1h", cl, c.Key.ID)
	}
	wrong := c.Token[:len(c.Token)-1] + map[bool]string{true: "b", false: "a"}[strings.HasSuffix(c.Token, "a")]
	if err := v.Verify(ctx, wrong, &cl); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("Verify(wrong secret) = %v, want rejected as unknown", err)
	}
	_, unknown, _, _ := newToken()
	if err := v.Verify(ctx, unknown, &cl); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("Verify(unknown key) = %v, want rejected as unknown", err)
	}

	// Last use: written by the first request, not by the next ones within
	// TouchEvery, again after it.
	first := clk.t
	clk.t = clk.t.Add(30 * time.Second)
	if err := v.Verify(ctx, c.Token, &cl); err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		t.Helper()
		k, err := st.APIKey(ctx, c.Key.ID)
		if err != nil {
			t.Fatal(err)
		}
		return k.LastUsedAt
	}
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("last used %v after two uses 30 s apart, want the first, %v", got, first)
	}
	clk.t = first.Add(61 * time.Second)
	if err := v.Verify(ctx, c.Token, &cl); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(clk.t) {
		t.Fatalf("last used %v a minute later, want %v", got, clk.t)
	}

	// Revoked on another node: still accepted from the cache, refused once
	// the cache's copy is CacheTTL old.
	if err := other.Revoke(ctx, c.Key.ID); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(4 * time.Second)
	if err := v.Verify(ctx, c.Token, &cl); err != nil {
		t.Fatalf("Verify within the cache TTL of a revoke elsewhere = %v, want accepted (cached)", err)
	}
	clk.t = clk.t.Add(5 * time.Second)
	if err := v.Verify(ctx, c.Token, &cl); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("Verify after the cache TTL = %v, want rejected as revoked", err)
	}

	// Revoked on this node: refused at once.
	c2, err := here.Create(ctx, CreateRequest{Name: "push", Scopes: []string{"ops"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(ctx, c2.Token, &cl); err != nil || cl.ExpiresAt != nil {
		t.Fatalf("Verify(no expiry) = %v, expiry %v", err, cl.ExpiresAt)
	}
	if err := here.Revoke(ctx, c2.Key.ID); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(ctx, c2.Token, &cl); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("Verify right after a revoke here = %v, want rejected as revoked", err)
	}
	if err := here.Revoke(ctx, "nokey"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Revoke(unknown) = %v, want ErrNotFound", err)
	}

	// Expired.
	c3, err := here.Create(ctx, CreateRequest{Name: "short", Scopes: []string{"trips:read"}, ExpiresIn: "10s"})
	if err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(10 * time.Second)
	if err := v.Verify(ctx, c3.Token, &cl); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Verify(expired) = %v, want rejected as expired", err)
	}

	// List: statuses, last use, never the secret.
	keys, err := here.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Key{}
	for _, k := range keys {
		got[k.ID] = k
	}
	if got[c.Key.ID].Status != StatusRevoked || got[c2.Key.ID].Status != StatusRevoked || got[c3.Key.ID].Status != StatusExpired ||
		got[c.Key.ID].LastUsedAt == nil || got[c3.Key.ID].LastUsedAt != nil {
		t.Fatalf("List = %+v", keys)
	}

	// The archive gone: refused as unavailable, never let through.
	st.Close()
	clk.t = clk.t.Add(time.Minute)
	if err := v.Verify(ctx, c2.Token, &cl); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify with the archive closed = %v, want ErrUnavailable", err)
	}
}

func TestCreateRefusesBadRequests(t *testing.T) {
	s := NewService(mustStore(t), nil)
	for _, tc := range []struct {
		r   CreateRequest
		err error
	}{
		{CreateRequest{Name: "x", Scopes: []string{"trips:write"}}, ErrInvalidScope},
		{CreateRequest{Name: "x"}, ErrInvalid},
		{CreateRequest{Name: " ", Scopes: []string{"ops"}}, ErrInvalid},
		{CreateRequest{Name: strings.Repeat("n", 201), Scopes: []string{"ops"}}, ErrInvalid},
		{CreateRequest{Name: "x", Scopes: []string{"ops"}, ExpiresIn: "soon"}, ErrInvalid},
	} {
		if _, err := s.Create(context.Background(), tc.r); !errors.Is(err, tc.err) {
			t.Errorf("Create(%+v) = %v, want %v", tc.r, err, tc.err)
		}
	}
	if ks, err := s.List(context.Background()); err != nil || len(ks) != 0 {
		t.Fatalf("List after refused creates = %v, %v; want none", ks, err)
	}
}

// gatedLookup serves one key, each read held until release is closed, and
// counts the reads.
type gatedLookup struct {
	key     archive.APIKey
	release chan struct{}
	reads   atomic.Int64
}

func (g *gatedLookup) APIKey(ctx context.Context, id string) (archive.APIKey, error) {
	g.reads.Add(1)
	<-g.release
	if id != g.key.ID {
		return archive.APIKey{}, archive.ErrNotFound
	}
	return g.key, nil
}

func (g *gatedLookup) TouchAPIKey(context.Context, string, time.Time) error { return nil }

// TestVerifierSharesReads: requests that miss the cache together wait on
// one archive read.
func TestVerifierSharesReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		id, tok, hash, err := newToken()
		if err != nil {
			t.Fatal(err)
		}
		g := &gatedLookup{key: archive.APIKey{ID: id, Name: "n", Hash: hash, Scopes: []string{"ops"}, CreatedAt: time.Now()},
			release: make(chan struct{})}
		v := NewVerifier(g, VerifierConfig{})
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range 50 {
			wg.Go(func() {
				var cl tokens.Claims
				if err := v.Verify(context.Background(), tok, &cl); err != nil || cl.Subject != id {
					failed.Add(1)
				}
			})
		}
		synctest.Wait() // every request is waiting on the one read
		close(g.release)
		wg.Wait()
		if n := g.reads.Load(); n != 1 || failed.Load() != 0 {
			t.Fatalf("50 requests at once: %d reads, %d failed; want 1 read, none failed", n, failed.Load())
		}
	})
}

// FuzzParse: any bearer token either parses into an id and a secret that
// make it up again, or is rejected as malformed; never a panic.
func FuzzParse(f *testing.F) {
	_, tok, _, _ := newToken()
	for _, s := range []string{tok, "hx_", "hx_a_b", "hx_" + strings.Repeat("a", 13) + "_" + strings.Repeat("z", 52), "hx__" + tok} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := parse(s)
		if err != nil {
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("parse(%q): %v, not ErrRejected", s, err)
			}
			return
		}
		if Prefix+id+"_"+secret != s || len(id) != idLen || len(secret) != secretLen {
			t.Fatalf("parse(%q) = %q, %q", s, id, secret)
		}
	})
}

// TestForgetDuringRead: a read in flight when the key is revoked on this
// node is not cached: the next request reads the archive again.
func TestForgetDuringRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		id, tok, hash, _ := newToken()
		g := &gatedLookup{key: archive.APIKey{ID: id, Name: "n", Hash: hash, Scopes: []string{"ops"}, CreatedAt: time.Now()},
			release: make(chan struct{})}
		v := NewVerifier(g, VerifierConfig{})
		done := make(chan error)
		go func() {
			var cl tokens.Claims
			done <- v.Verify(context.Background(), tok, &cl)
		}()
		synctest.Wait() // the read is in flight
		v.Forget(id)    // revoked here meanwhile
		close(g.release)
		if err := <-done; err != nil {
			t.Fatalf("the request that made the read: %v", err)
		}
		var cl tokens.Claims
		if err := v.Verify(context.Background(), tok, &cl); err != nil || g.reads.Load() != 2 {
			t.Fatalf("next request: %v after %d reads; want a second read (nothing cached)", err, g.reads.Load())
		}
	})
}
