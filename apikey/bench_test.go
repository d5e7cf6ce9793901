package apikey

import (
	"context"
	"testing"

	"github.com/hextrack/hextrack/api/tokens"
)

// BenchmarkVerifyCached: the per-request cost of a key whose copy is
// cached (parse, SHA-256, constant-time compare, claims); last use is
// already recorded, as for all but one request a minute.
func BenchmarkVerifyCached(b *testing.B) {
	st := mustStoreTB(b)
	v := NewVerifier(st, VerifierConfig{})
	c, err := NewService(st, v).Create(context.Background(), CreateRequest{Name: "bench", Scopes: []string{"trips:read"}})
	if err != nil {
		b.Fatal(err)
	}
	var cl tokens.Claims
	if err := v.Verify(context.Background(), c.Token, &cl); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var cl tokens.Claims
		for pb.Next() {
			if err := v.Verify(context.Background(), c.Token, &cl); err != nil {
				b.Fatal(err)
			}
		}
	})
}
