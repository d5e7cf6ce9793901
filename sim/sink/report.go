package sink

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Report is what the sink saw. Delivered = Unique + Duplicates.
type Report struct {
	// Received counts every request.
	Received int64 `json:"received"`
	// BadSignatures: refused 401 (signature, timestamp or headers).
	BadSignatures int64 `json:"bad_signatures"`
	// Malformed: signed, but the body is not an event envelope (400).
	Malformed int64 `json:"malformed"`
	// IDMismatch: deliveries whose webhook-id is neither the body's event
	// id nor "<topic>/<event id>" (taken all the same).
	IDMismatch int64 `json:"id_mismatch"`
	// Failed: answered 500 on purpose (Fail, FailFor).
	Failed int64 `json:"failed"`
	// Stalled: held on purpose; Abandoned of them: the sender gave up
	// first (not delivered).
	Stalled   int64 `json:"stalled"`
	Abandoned int64 `json:"abandoned"`
	// Delivered: answered 2xx.
	Delivered  int64 `json:"delivered"`
	Unique     int64 `json:"unique"`
	Duplicates int64 `json:"duplicates"`
	OutOfOrder int64 `json:"out_of_order"`
	// Gaps: events of the checked trips' histories never delivered, by
	// trip (at most 20 ids each); -1 when there was no History.
	Gaps   int64               `json:"gaps"`
	GapIDs map[string][]string `json:"gap_ids,omitempty"`
	// Trips delivered; Checked of them compared with their history;
	// HistoryErrors could not be read.
	Trips         int      `json:"trips"`
	Checked       int      `json:"checked"`
	HistoryErrors []string `json:"history_errors,omitempty"`
}

// maxGapIDs bounds the ids a report lists per trip.
const maxGapIDs = 20

// Report sums what was received and, with a History, compares every trip
// delivered with its history (events of Config.Types): a final report.
func (s *Sink) Report(ctx context.Context) Report {
	s.mu.Lock()
	keys := make([]string, 0, len(s.keys))
	for k := range s.keys {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	slices.Sort(keys)
	r := Report{Received: s.received.Load(), BadSignatures: s.badSig.Load(), Malformed: s.malformed.Load(),
		IDMismatch: s.idMismatch.Load(), Failed: s.failed.Load(), Stalled: s.stalled.Load(),
		Abandoned: s.abandoned.Load(), Delivered: s.delivered.Load(), Gaps: -1}
	if s.cfg.History != nil {
		r.Gaps = 0
	}
	for _, k := range keys {
		trip, ok := strings.CutPrefix(k, "trip:")
		if !ok {
			continue
		}
		r.Trips++
		if s.cfg.History == nil {
			continue
		}
		evs, err := s.cfg.History.TripEvents(ctx, trip)
		if err != nil {
			r.HistoryErrors = append(r.HistoryErrors, fmt.Sprintf("trip %s: %v", trip, err))
			continue
		}
		var truth []string
		for _, e := range evs {
			if s.typeChecked(e.Type) {
				truth = append(truth, e.ID)
			}
		}
		s.check.Finish(k) // final: an event not delivered by now is a gap
		res := s.check.Verify(k, truth)
		r.Checked++
		if len(res.Lost) > 0 {
			r.Gaps += int64(len(res.Lost))
			if r.GapIDs == nil {
				r.GapIDs = map[string][]string{}
			}
			r.GapIDs[trip] = res.Lost[:min(len(res.Lost), maxGapIDs)]
		}
	}
	t := s.check.Totals()
	r.Duplicates, r.OutOfOrder = t.Duplicated, t.OutOfOrder
	r.Unique = t.Received - t.Duplicated
	return r
}

// Write prints the report as a few lines of text.
func (r Report) Write(w io.Writer) {
	fmt.Fprintf(w, "received %d  delivered %d  unique %d  duplicates %d  out-of-order %d  gaps %s  bad signatures %d\n",
		r.Received, r.Delivered, r.Unique, r.Duplicates, r.OutOfOrder, gaps(r.Gaps), r.BadSignatures)
	fmt.Fprintf(w, "refused on purpose: failed %d  stalled %d (sender gave up on %d)  malformed %d  webhook-id ≠ event id %d\n",
		r.Failed, r.Stalled, r.Abandoned, r.Malformed, r.IDMismatch)
	fmt.Fprintf(w, "trips %d, checked against their history %d\n", r.Trips, r.Checked)
	trips := make([]string, 0, len(r.GapIDs))
	for t := range r.GapIDs {
		trips = append(trips, t)
	}
	slices.Sort(trips)
	for _, t := range trips {
		fmt.Fprintf(w, "  trip %s never delivered: %s\n", t, strings.Join(r.GapIDs[t], " "))
	}
	for _, e := range r.HistoryErrors {
		fmt.Fprintf(w, "  history not read: %s\n", e)
	}
}

func gaps(n int64) string {
	if n < 0 {
		return "unchecked (no --server)"
	}
	return fmt.Sprint(n)
}
