package driverlink

import (
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/sim/metrics"
)

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
