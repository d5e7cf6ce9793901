package tokens

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeClock is a settable clock for Auth.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// TestParseCache checks the verified-token cache: a cached token is
// refused past its exp and before its nbf exactly like a fresh parse,
// failures are never cached, a caller can't alter the cached claims, and
// the cache stays bounded.
func TestParseCache(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	secret := []byte("test-secret-0123456789abcdef")
	newAuth := func() *Auth { a := NewAuth(secret); a.now = clk.now; return a }

	t.Run("hit, copy, expiry", func(t *testing.T) {
		a := newAuth()
		tok, err := a.Mint(Request{Role: RoleRider, Sub: "r1", TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		c1, err := a.Parse(tok)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := a.verified[tok]; !ok {
			t.Fatal("a verified token was not cached")
		}
		c1.Role, c1.Subject = RoleOps, "attacker" // must not reach the cache
		c2, err := a.Parse(tok)
		if err != nil || c2.Role != RoleRider || c2.Subject != "r1" {
			t.Fatalf("cached parse = %+v, %v; want rider r1", c2, err)
		}
		clk.add(59 * time.Second)
		if _, err := a.Parse(tok); err != nil {
			t.Fatalf("1 s before exp: %v", err)
		}
		clk.add(time.Second) // exactly exp: expired, as jwt says
		if _, err := a.Parse(tok); !errors.Is(err, jwt.ErrTokenExpired) {
			t.Fatalf("at exp: %v, want expired", err)
		}
		if _, ok := a.verified[tok]; ok {
			t.Fatal("an expired token stayed cached")
		}
	})

	t.Run("failures are not cached", func(t *testing.T) {
		a := newAuth()
		tok, _ := a.Mint(Request{Role: RoleDriver, Sub: "d1", TTL: time.Hour})
		if _, err := a.Parse(tok); err != nil {
			t.Fatal(err)
		}
		bs := []byte(tok)
		if i := len(bs) - 10; bs[i] == 'A' { // a signature byte, not base64 padding bits
			bs[i] = 'B'
		} else {
			bs[i] = 'A'
		}
		tampered := string(bs)
		for range 2 {
			if _, err := a.Parse(tampered); err == nil {
				t.Fatal("a tampered token was accepted")
			}
		}
		other, _ := NewAuth([]byte("another-secret")).Mint(Request{Role: RoleOps, Sub: "o", TTL: time.Hour})
		if _, err := a.Parse(other); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			t.Fatalf("foreign secret: %v", err)
		}
		if len(a.verified) != 1 {
			t.Fatalf("%d cached tokens, want only the valid one", len(a.verified))
		}
	})

	t.Run("nbf", func(t *testing.T) {
		a := newAuth()
		now := clk.now()
		c := Claims{Role: RoleRider, RegisteredClaims: jwt.RegisteredClaims{Subject: "r2",
			NotBefore: jwt.NewNumericDate(now.Add(10 * time.Second)), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Parse(tok); !errors.Is(err, jwt.ErrTokenNotValidYet) {
			t.Fatalf("before nbf: %v", err)
		}
		clk.add(10 * time.Second)
		if _, err := a.Parse(tok); err != nil {
			t.Fatalf("at nbf: %v", err)
		}
		clk.add(-time.Second) // a clock stepping back: the cache doesn't hide nbf
		if _, err := a.Parse(tok); !errors.Is(err, jwt.ErrTokenNotValidYet) {
			t.Fatalf("cached, clock before nbf: %v", err)
		}
		clk.add(time.Second)
	})

	t.Run("bounded", func(t *testing.T) {
		a := newAuth()
		for i := range maxVerified + 50 {
			tok, _ := a.Mint(Request{Role: RoleRider, Sub: fmt.Sprintf("r%d", i), TTL: time.Hour})
			if _, err := a.Parse(tok); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(a.verified); n > maxVerified || n < maxVerified-1 {
			t.Fatalf("%d cached tokens, want about the bound %d", n, maxVerified)
		}
	})
}

func BenchmarkParseCached(b *testing.B) {
	a := NewAuth([]byte("bench-secret"))
	tok, _ := a.Mint(Request{Role: RoleRider, Sub: "r1", TTL: time.Hour})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}
