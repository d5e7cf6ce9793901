package feed_test

import (
	"errors"
	"testing"

	"github.com/hextrack/hextrack/feed"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want feed.ID
		ok   bool
	}{
		{"full", "1732521600000-0", feed.ID{Ms: 1732521600000, Seq: 0}, true},
		{"seq", "1732521600000-17", feed.ID{Ms: 1732521600000, Seq: 17}, true},
		{"bare ms", "5", feed.ID{Ms: 5}, true},
		{"zero", "0-0", feed.ID{}, true},
		{"max", "18446744073709551615-18446744073709551615", feed.ID{Ms: ^uint64(0), Seq: ^uint64(0)}, true},
		{"empty", "", feed.ID{}, false},
		{"overflow ms", "18446744073709551616-0", feed.ID{}, false},
		{"negative", "-1-0", feed.ID{}, false},
		{"plus", "+1-0", feed.ID{}, false},
		{"leading zero", "01-0", feed.ID{}, false},
		{"leading zero seq", "1-01", feed.ID{}, false},
		{"space", " 1-0", feed.ID{}, false},
		{"trailing dash", "1-", feed.ID{}, false},
		{"two dashes", "1-2-3", feed.ID{}, false},
		{"special dollar", "$", feed.ID{}, false},
		{"special dash", "-", feed.ID{}, false},
		{"special plus", "+", feed.ID{}, false},
		{"exclusive", "(1-0", feed.ID{}, false},
		{"unicode digits", "١-0", feed.ID{}, false},
		{"too long", "1-00000000000000000000000000000000000000000000", feed.ID{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := feed.ParseID(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseID(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && !errors.Is(err, feed.ErrInvalidID) {
				t.Fatalf("error %v is not ErrInvalidID", err)
			}
			if got != tt.want {
				t.Fatalf("ParseID(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestIDCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1-0", "1-0", 0},
		{"1-0", "1-1", -1},
		{"2-0", "1-99", 1},
		{"9-0", "10-0", -1}, // numeric, not lexical
		{"0-0", "0-1", -1},
		{"5", "5-0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.a+"_vs_"+tt.b, func(t *testing.T) {
			got, err := feed.CompareIDs(tt.a, tt.b)
			if err != nil || got != tt.want {
				t.Fatalf("CompareIDs(%s,%s) = %d, %v; want %d", tt.a, tt.b, got, err, tt.want)
			}
			if back, _ := feed.CompareIDs(tt.b, tt.a); back != -tt.want {
				t.Fatalf("not antisymmetric: %d", back)
			}
		})
	}
	if _, err := feed.CompareIDs("1-0", "x"); !errors.Is(err, feed.ErrInvalidID) {
		t.Fatalf("CompareIDs with a malformed id: err = %v", err)
	}
	next, ok := feed.MustParseID("7-18446744073709551615").Next()
	if !ok || next != (feed.ID{Ms: 8}) {
		t.Fatalf("Next carry = %v %v", next, ok)
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"0-0", "1732521600000-0", "5", "18446744073709551615-18446744073709551615", "", "-", "1-", "01-1", "1-2-3", "\x00", "999999999999999999999-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := feed.ParseID(s)
		if err != nil {
			if !errors.Is(err, feed.ErrInvalidID) {
				t.Fatalf("ParseID(%q): error %v is not ErrInvalidID", s, err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error message not bounded: %d bytes", len(err.Error()))
			}
			return
		}
		// A valid ID round-trips through its canonical form.
		canon := id.String()
		again, err := feed.ParseID(canon)
		if err != nil || again != id {
			t.Fatalf("round trip %q -> %q -> %v, %v", s, canon, again, err)
		}
		if canon != s && canon != s+"-0" {
			t.Fatalf("ParseID(%q) accepted a non-canonical form (canonical %q)", s, canon)
		}
		if id.Compare(again) != 0 {
			t.Fatal("Compare not reflexive")
		}
		if next, ok := id.Next(); ok && !id.Less(next) {
			t.Fatalf("Next(%v) = %v is not greater", id, next)
		}
	})
}
