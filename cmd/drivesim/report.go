package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/hextrack/hextrack/sim/metrics"
)

// printTable writes the final report as an aligned table.
func printTable(w io.Writer, r metrics.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	title := r.Mode
	if r.Interrupted {
		title += " (interrupted)"
	}
	fmt.Fprintf(tw, "drivesim %s\t%s, %.1f s wall, %.1f s simulated (%gx)\n", title, r.Server, r.WallS, r.SimS, r.SpeedUp)
	fmt.Fprintf(tw, "drivers / riders\t%d / %d (%s)\n", r.Drivers, r.Riders, r.Transport)
	fmt.Fprintf(tw, "trips\trequested %d  completed %d  cancelled %d  expired %d  active %d\n",
		r.Trips.Requested, r.Trips.Completed, r.Trips.Cancelled, r.Trips.Expired, r.Trips.Active)
	fmt.Fprintf(tw, "durable events\treceived %d  lost %d  duplicated %d  out-of-order %d  resets %d  (topics checked %d, unverified %d)\n",
		r.Events.Received, r.Events.Lost, r.Events.Duplicated, r.Events.OutOfOrder, r.Events.Resets, r.Events.Checked, r.Events.Unverified)
	fmt.Fprintf(tw, "ping→rider ms\t%s\n", lat(r.Latency))
	fmt.Fprintf(tw, "ping ack ms\t%s\n", lat(r.AckLatency))
	fmt.Fprintf(tw, "pings\tsent %d  acked %d  rejected %d  duplicates %d  buffered offline %d  throttled uploads %d\n",
		r.Pings.Sent, r.Pings.Acked, r.Pings.Rejected, r.Pings.Duplicates, r.Pings.Buffered, r.Pings.Throttled)
	if len(r.Pings.RejectedBy) > 0 || r.Pings.Outliers > 0 {
		fmt.Fprintf(tw, "rejections\t%s\n", rejections(r))
	}
	fmt.Fprintf(tw, "throughput /s\tpings %.1f  requests %.1f  events %.1f  locations %.1f\n",
		r.Throughput.PingsPerS, r.Throughput.RequestsPerS, r.Throughput.EventsPerS, r.Throughput.LocationsPerS)
	fmt.Fprintf(tw, "actions\toffers %d  declined %d  missed %d  accepted %d  cancels %d  dropoff changes %d  messages %d  outages %d\n",
		r.Actions.Offers, r.Actions.Declined, r.Actions.Missed, r.Actions.Accepted, r.Actions.Cancels, r.Actions.DropoffChanges, r.Actions.Messages, r.Actions.Outages)
	if z := r.Zones; z != nil {
		fmt.Fprintf(tw, "zone events\t%d zones: owed by the fixes %d, found %d, missing %d, out of order %d  (published %d: dwell %d, not shown by the fixes (offline, stale) %d)\n",
			z.Zones, z.Owed, z.Found, z.Missing, z.OutOfOrder, z.Events, z.Dwell, z.Extra)
	}
	if d := r.Deliveries; d.Trips > 0 {
		fmt.Fprintf(tw, "deliveries\ttrips %d  stops completed %d  PINs read %d  entered %d  refused %d\n",
			d.Trips, d.StopsCompleted, d.PINsRead, d.PINsEntered, d.PINsRefused)
	}
	fmt.Fprintf(tw, "requests / errors / reconnects\t%d / %d / %d\n", r.Requests, r.Errors, r.Reconnects)
	for i, e := range r.ErrorSample {
		if i == 5 {
			break
		}
		fmt.Fprintf(tw, "  error ×%d\t%s\n", e.Count, e.Message)
	}
	_ = tw.Flush()
	if z := r.Zones; z != nil {
		for _, ex := range z.Examples {
			fmt.Fprintf(w, "zone check: %s\n", ex)
		}
	}
	if r.Pings.Unexpected > 0 {
		fmt.Fprintf(w, "note: %d rejections were of honest simulated fixes, not deliberate outliers (--outlier-rate); the reasons are the server's error codes.\n", r.Pings.Unexpected)
	}
	if r.Pings.Held > 0 {
		fmt.Fprintf(w, "note: cars stood still for %d of %d fixes: at --speedup %g they drove faster than the server's jump check (70 m/s\n"+
			"      from the last fix, plus 50 m) accepts in wall time; lower --speedup or --ping-every for full speed.\n", r.Pings.Held, r.Pings.Sent, r.SpeedUp)
	}
	if r.Pings.Throttled > 0 {
		fmt.Fprintf(w, "note: the server throttled %d uploads (429: its per-driver ping rate). At --speedup %g each driver sends %g fixes per wall second;\n"+
			"      raise the server's HEXTRACK_PING_RATE (--ping-rate) for fast simulations.\n", r.Pings.Throttled, r.SpeedUp, r.SpeedUp)
	}
}

// rejections says why the server rejected pings, reason by reason, and
// which rejections were the simulator's deliberate outliers.
func rejections(r metrics.Report) string {
	reasons := slices.Sorted(maps.Keys(r.Pings.RejectedBy))
	var parts []string
	for _, reason := range reasons {
		n := r.Pings.RejectedBy[reason]
		if n.Deliberate > 0 {
			parts = append(parts, fmt.Sprintf("%d deliberate outliers rejected as %s, as intended", n.Deliberate, reason))
		}
		if n.Unexpected > 0 {
			parts = append(parts, fmt.Sprintf("%d UNEXPECTED %s", n.Unexpected, reason))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "none")
	}
	if acc := r.Pings.Outliers - deliberate(r); acc > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d deliberate outliers not (yet) rejected: still queued at the end, or accepted", acc, r.Pings.Outliers))
	}
	return strings.Join(parts, "; ")
}

func deliberate(r metrics.Report) int64 {
	var n int64
	for _, c := range r.Pings.RejectedBy {
		n += c.Deliberate
	}
	return n
}

func lat(l metrics.Latency) string {
	if l.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  (n=%d)", l.P50, l.P90, l.P99, l.Max, l.Count)
}

// progress prints a live line on a terminal (rewritten in place) or a
// plain line every few seconds otherwise.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	quiet bool
	n     int
	last  int
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(r metrics.Report) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	line := fmt.Sprintf("%5.0fs drivers %d (%d moving, %d on trips)  trips %d/%d done (%d cancelled, %d expired)  pings %d acked (%.0f/s, %d rejected)  events %d lost %d dup %d  ping→rider p50 %.0fms p99 %.0fms  errors %d",
		r.WallS, r.Fleet.Online, r.Fleet.Moving, r.Fleet.OnTrip, r.Trips.Completed, r.Trips.Requested, r.Trips.Cancelled, r.Trips.Expired,
		r.Pings.Acked, r.Throughput.PingsPerS, r.Pings.Rejected, r.Events.Received, r.Events.Lost, r.Events.Duplicated,
		r.Latency.P50, r.Latency.P99, r.Errors)
	if p.tty {
		pad := ""
		if p.last > len(line) {
			pad = strings.Repeat(" ", p.last-len(line))
		}
		p.last = len(line)
		fmt.Fprintf(p.w, "\r%s%s", line, pad)
		return
	}
	if p.n%5 == 1 {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && !p.quiet && p.last > 0 {
		fmt.Fprintln(p.w)
	}
}
