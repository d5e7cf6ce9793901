package driverlink

import (
	"net/http"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/sim/metrics"
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

// TestWSAckRejections: a locations ack's rejections are matched to the
// pings of the batch at the head of what was queued, also when the
// batch's last ping is the one rejected (the ack's seq is then the highest
// accepted, short of the batch), and the next batch lines up after it.
func TestWSAckRejections(t *testing.T) {
	st := metrics.NewStats(1)
	w := &WS{id: "d1", st: st}
	for seq := int64(1); seq <= 6; seq++ {
		w.pending = append(w.pending, sentPing{seq: seq, at: time.Now()})
	}
	st.Rejects.Outlier("d1", 3)
	st.Rejects.Outlier("d1", 5)
	rej := func(i int) struct {
		Index  int    `json:"index"`
		Reason string `json:"reason"`
	} {
		return struct {
			Index  int    `json:"index"`
			Reason string `json:"reason"`
		}{i, metrics.ReasonImplausibleJump}
	}
	// Batch 1: seqs 1-3, the last (an outlier) rejected: the ack says seq 2.
	a := client.LocationAck{Seq: 2, Accepted: 2}
	a.Rejected = append(a.Rejected, rej(2))
	w.acked(a)
	// Batch 2: seqs 4-6, the middle one (an outlier) rejected.
	b := client.LocationAck{Seq: 6, Accepted: 2}
	b.Rejected = append(b.Rejected, rej(1))
	w.acked(b)
	by, outliers := st.Rejects.Summary()
	if got := by[metrics.ReasonImplausibleJump]; got.Deliberate != 2 || got.Unexpected != 0 || outliers != 2 {
		t.Fatalf("rejections %+v of %d outliers, want both outliers matched", by, outliers)
	}
	if len(w.pending) != 0 {
		t.Fatalf("pending %v after both batches were acked", w.pending)
	}
}
