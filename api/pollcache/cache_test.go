package pollcache

import (
	"fmt"
	"testing"
	"time"
)

// TestPollCache: a tag is served for less than ttl after the read it came
// from began; an older read never replaces a newer one; forget drops a
// trip's tags and refuses reads begun before it; the cache stays bounded.
func TestPollCache(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	pc := New(100 * time.Millisecond)
	pc.now = func() time.Time { return now }
	rider := Key{Role: "rider", Sub: "r1"}
	ops := Key{Role: "ops", Sub: "o"}
	pay := Key{Res: "pay_x", Role: "rider", Sub: "r1"}

	read := now
	pc.Put("t1", rider, []string{`"1.0"`}, 5, read)
	pc.Put("t1", pay, []string{`"p1"`}, 0, read)
	for _, c := range []struct {
		name string
		k    Key
		etag string
		ok   bool
	}{{"rider", rider, `"1.0"`, true}, {"payment", pay, `"p1"`, true}, {"other caller", ops, "", false}} {
		if etag, _, ok := pc.Get("t1", c.k); ok != c.ok || ok && etag[0] != c.etag {
			t.Fatalf("%s: %q %v", c.name, etag, ok)
		}
	}
	if _, _, ok := pc.Get("t2", rider); ok {
		t.Fatal("unknown trip served")
	}

	t.Run("expiry", func(t *testing.T) {
		now = read.Add(99 * time.Millisecond)
		if _, aux, ok := pc.Get("t1", rider); !ok || aux != 5 {
			t.Fatalf("99ms after the read: %v aux %d", ok, aux)
		}
		now = read.Add(100 * time.Millisecond)
		if _, _, ok := pc.Get("t1", rider); ok {
			t.Fatal("served ttl after the read began")
		}
	})
	t.Run("older read", func(t *testing.T) {
		pc.Put("t1", rider, []string{`"2.0"`}, 2, read.Add(50*time.Millisecond))
		pc.Put("t1", rider, []string{`"1.9"`}, 2, read.Add(40*time.Millisecond)) // began earlier, answered later
		now = read.Add(60 * time.Millisecond)
		if etag, _, _ := pc.Get("t1", rider); etag[0] != `"2.0"` {
			t.Fatalf("got %s, want the newer read's", etag)
		}
	})
	t.Run("forget", func(t *testing.T) {
		now = read.Add(70 * time.Millisecond)
		begun := now.Add(-time.Millisecond) // a read in flight across the change
		pc.Forget("t1")
		for _, k := range []Key{rider, pay} {
			if _, _, ok := pc.Get("t1", k); ok {
				t.Fatalf("%+v served after forget", k)
			}
		}
		pc.Put("t1", rider, []string{`"2.0"`}, 2, begun)
		pc.Put("t1", rider, []string{`"2.0"`}, 2, now) // not after the change either
		if _, _, ok := pc.Get("t1", rider); ok {
			t.Fatal("a read begun before the change was kept")
		}
		pc.Put("t1", rider, []string{`"3.0"`}, 2, now.Add(time.Nanosecond))
		if etag, _, ok := pc.Get("t1", rider); !ok || etag[0] != `"3.0"` {
			t.Fatalf("a read begun after the change: %q %v", etag, ok)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		for i := range maxTrips + 10 { // all live: arbitrary ones go
			pc.Put(fmt.Sprint("b", i), rider, []string{`"1.0"`}, 2, now)
		}
		if n := len(pc.trips); n > maxTrips || n < maxTrips/2 {
			t.Fatalf("%d trips held", n)
		}
		for i := 0; len(pc.trips) < maxTrips; i++ {
			pc.Put(fmt.Sprint("c", i), rider, []string{`"1.0"`}, 2, now)
		}
		now = now.Add(time.Second) // all expired: swept, not evicted at random
		pc.Put("last", rider, []string{`"1.0"`}, 2, now)
		if n := len(pc.trips); n != 1 {
			t.Fatalf("%d trips after a sweep of expired ones", n)
		}
	})
	t.Run("off", func(t *testing.T) {
		off := New(-1)
		off.Put("t1", rider, []string{`"1.0"`}, 2, now)
		off.Forget("t1")
		if _, _, ok := off.Get("t1", rider); ok {
			t.Fatal("a cache that is off served")
		}
	})
}
