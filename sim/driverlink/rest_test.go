package driverlink

import (
	"net/http"
	"testing"

	"github.com/hextrack/hextrack/client"
)

func TestNewerID(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"5-1", "", true},
		{"5-1", "5-0", true},
		{"5-0", "5-1", false},
		{"5-1", "5-1", false},
		{"10-0", "9-99", true},
		{"junk", "", false},
	} {
		if got := newerID(tc.a, tc.b); got != tc.want {
			t.Errorf("newerID(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestAllRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int // rejected pings; -1: not an all-rejected answer
	}{
		{"every ping refused", &client.Error{Status: http.StatusBadRequest, Code: "invalid_pings",
			Details: []byte(`{"accepted":0,"duplicates":0,"rejected":[{"index":0,"reason":"implausible_jump"},{"index":1,"reason":"future_ts"}],"last_seq":7}`)}, 2},
		{"bad request without verdicts", &client.Error{Status: http.StatusBadRequest, Code: "invalid_argument"}, -1},
		{"rate limited", &client.Error{Status: http.StatusTooManyRequests, Code: "rate_limited"}, -1},
		{"no error", nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, ok := allRejected(tc.err)
			if got := map[bool]int{true: len(res.Rejected), false: -1}[ok]; got != tc.want {
				t.Fatalf("allRejected = %d rejected (ok %v), want %d", len(res.Rejected), ok, tc.want)
			}
		})
	}
}
