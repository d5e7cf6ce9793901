package metrics

import (
	"encoding/json"
	"github.com/hextrack/hextrack/sim/zonecheck"
	"math"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/sim/eventcheck"
)

// Counters are the running totals of a simulation. All fields are updated
// atomically; read them with Load.
type Counters struct {
	TripsRequested atomic.Int64
	TripsCompleted atomic.Int64
	TripsCancelled atomic.Int64
	TripsExpired   atomic.Int64
	TripsAccepted  atomic.Int64 // accepts by simulated drivers

	Offers         atomic.Int64
	OffersDeclined atomic.Int64
	OffersMissed   atomic.Int64 // accepts refused: the offer expired or the trip moved on
	Cancels        atomic.Int64 // rider cancels sent
	DropoffChanges atomic.Int64
	Messages       atomic.Int64

	Deliveries     atomic.Int64 // multi-stop deliveries requested
	StopsCompleted atomic.Int64 // stops the drivers completed through the stop route
	PINsRead       atomic.Int64 // PINs riders read through their trip's share link
	PINsEntered    atomic.Int64 // stop completions that carried a PIN
	PINsRefused    atomic.Int64 // of those, refused (invalid_pin, pin_attempts_exhausted)

	PingsSent      atomic.Int64
	PingsAcked     atomic.Int64
	PingsRejected  atomic.Int64
	PingsDuplicate atomic.Int64
	PingsBuffered  atomic.Int64 // generated while offline, uploaded later
	PingsThrottled atomic.Int64 // uploads refused with 429 (kept and sent again)
	FixesHeld      atomic.Int64 // fixes a car stood still for, its stamps too far ahead (stamps)
	Outages        atomic.Int64
	Resets         atomic.Int64 // command channel resets (commands trimmed)

	// Gauges of the fleet, for progress lines.
	DriversOnline atomic.Int64 // drivers running
	DriversMoving atomic.Int64 // drivers whose car moved in the last step
	DriversOnTrip atomic.Int64 // drivers with an accepted trip

	EventsReceived atomic.Int64 // durable events received by riders
	Locations      atomic.Int64 // trip.location frames received
	Requests       atomic.Int64
	Errors         atomic.Int64
	Reconnects     atomic.Int64
}

// Report is what drivesim prints and writes with --json. The trips, events,
// latency_ms and pings objects are the fixed shape other tools read;
// latency_ms is ping→rider delivery latency.
type Report struct {
	Mode      string  `json:"mode"`
	Server    string  `json:"server"`
	WallS     float64 `json:"wall_s"`
	SimS      float64 `json:"sim_s"`
	SpeedUp   float64 `json:"speedup"`
	Drivers   int     `json:"drivers"`
	Riders    int     `json:"riders"`
	Transport string  `json:"transport,omitempty"`

	Trips struct {
		Requested int64 `json:"requested"`
		Completed int64 `json:"completed"`
		Cancelled int64 `json:"cancelled"`
		Expired   int64 `json:"expired"`
		Active    int64 `json:"active"`
	} `json:"trips"`
	Events struct {
		Received   int64 `json:"received"`
		Lost       int64 `json:"lost"`
		Duplicated int64 `json:"duplicated"`
		OutOfOrder int64 `json:"out_of_order"`
		Resets     int64 `json:"resets"`
		Checked    int64 `json:"checked_topics"`
		Unverified int64 `json:"unverified_topics"`
	} `json:"events"`
	Latency    Latency `json:"latency_ms"`
	AckLatency Latency `json:"ack_latency_ms"`
	Pings      struct {
		Sent       int64 `json:"sent"`
		Acked      int64 `json:"acked"`
		Rejected   int64 `json:"rejected"`
		Duplicates int64 `json:"duplicates"`
		Buffered   int64 `json:"buffered"`
		Throttled  int64 `json:"throttled"` // uploads refused with 429 (the pings were sent again)
		// Outliers is how many deliberate GPS outliers (--outlier-rate) were sent.
		Outliers int64 `json:"outliers"`
		// Held is how many fixes a car stood still for because its motion
		// ran ahead of what the server's jump rule accepts at this speed-up.
		Held int64 `json:"held,omitempty"`
		// Unexpected is the rejections that were not of a deliberate outlier:
		// an honest simulated driver should never have one.
		Unexpected int64 `json:"unexpected_rejections"`
		// RejectedBy is the server's rejection reason (its error code per
		// ping) → how many, split into deliberate outliers and the rest.
		RejectedBy map[string]RejectCount `json:"rejected_by,omitempty"`
	} `json:"pings"`
	// Fleet is the drivers' state when the report was made.
	Fleet struct {
		Online int64 `json:"online"`
		Moving int64 `json:"moving"`
		OnTrip int64 `json:"on_trip"`
	} `json:"fleet"`
	Throughput struct {
		PingsPerS     float64 `json:"pings_per_s"`
		RequestsPerS  float64 `json:"requests_per_s"`
		EventsPerS    float64 `json:"events_per_s"`
		LocationsPerS float64 `json:"locations_per_s"`
	} `json:"throughput"`
	Actions struct {
		Offers         int64 `json:"offers"`
		Declined       int64 `json:"declined"`
		Missed         int64 `json:"missed"`
		Accepted       int64 `json:"accepted"`
		Cancels        int64 `json:"cancels"`
		DropoffChanges int64 `json:"dropoff_changes"`
		Messages       int64 `json:"messages"`
		Outages        int64 `json:"outages"`
	} `json:"actions"`
	// Deliveries are the multi-stop deliveries (drivesim run --deliveries).
	Deliveries struct {
		Trips          int64 `json:"trips"`
		StopsCompleted int64 `json:"stops_completed"`
		PINsRead       int64 `json:"pins_read"`
		PINsEntered    int64 `json:"pins_entered"`
		PINsRefused    int64 `json:"pins_refused"`
	} `json:"deliveries"`
	Requests    int64        `json:"requests"`
	Errors      int64        `json:"errors"`
	Reconnects  int64        `json:"reconnects"`
	ErrorSample []ErrorCount `json:"error_sample,omitempty"`
	Interrupted bool         `json:"interrupted,omitempty"`
	// Zones is the zone events checked against the drivers' fixes
	// (drivesim run --zones); nil without zones.
	Zones *zonecheck.Report `json:"zones,omitempty"`
	Extra any               `json:"extra,omitempty"`
}

// Stats gathers everything a run measures.
type Stats struct {
	C       Counters
	Deliver Histogram // ping → rider (trip.location received)
	Ack     Histogram // ping upload → ack
	Track   Histogram // replay: metres between the server\'s position and the trace
	Errs    Errors
	Rejects Rejections
	Check   eventcheck.Checker
	start   time.Time
	speedUp float64
}

// NewStats starts the clock of a run.
func NewStats(speedUp float64) *Stats {
	if speedUp <= 0 {
		speedUp = 1
	}
	return &Stats{start: time.Now(), speedUp: speedUp}
}

// Err counts and records an error.
func (s *Stats) Err(err error) {
	if err == nil {
		return
	}
	s.C.Errors.Add(1)
	s.Errs.Add(err)
}

// Elapsed is the wall time since the run started.
func (s *Stats) Elapsed() time.Duration { return time.Since(s.start) }

// Report fills a report from the counters. Event lost/duplicated counts
// come from the checker's last Verify.
func (s *Stats) Report(mode string) Report {
	var r Report
	c := &s.C
	wall := s.Elapsed().Seconds()
	r.Mode = mode
	r.WallS = math.Round(wall*10) / 10
	r.SpeedUp = s.speedUp
	r.SimS = math.Round(wall*s.speedUp*10) / 10
	r.Trips.Requested = c.TripsRequested.Load()
	r.Trips.Completed = c.TripsCompleted.Load()
	r.Trips.Cancelled = c.TripsCancelled.Load()
	r.Trips.Expired = c.TripsExpired.Load()
	r.Trips.Active = max(0, r.Trips.Requested-r.Trips.Completed-r.Trips.Cancelled-r.Trips.Expired)
	t := s.Check.Totals()
	r.Events.Received = c.EventsReceived.Load()
	r.Events.Lost, r.Events.Duplicated, r.Events.OutOfOrder = t.Lost, t.Duplicated, t.OutOfOrder
	r.Events.Resets, r.Events.Checked, r.Events.Unverified = t.Resets, t.Checked, t.Unverified
	r.Latency = s.Deliver.Summary()
	r.AckLatency = s.Ack.Summary()
	r.Pings.Sent = c.PingsSent.Load()
	r.Pings.Acked = c.PingsAcked.Load()
	r.Pings.Rejected = c.PingsRejected.Load()
	r.Pings.Duplicates = c.PingsDuplicate.Load()
	r.Pings.Buffered = c.PingsBuffered.Load()
	r.Pings.Throttled = c.PingsThrottled.Load()
	r.Pings.RejectedBy, r.Pings.Outliers = s.Rejects.Summary()
	r.Pings.Held = c.FixesHeld.Load()
	for _, n := range r.Pings.RejectedBy {
		r.Pings.Unexpected += n.Unexpected
	}
	r.Fleet.Online = c.DriversOnline.Load()
	r.Fleet.Moving = c.DriversMoving.Load()
	r.Fleet.OnTrip = c.DriversOnTrip.Load()
	if wall > 0 {
		r.Throughput.PingsPerS = math.Round(float64(r.Pings.Acked)/wall*10) / 10
		r.Throughput.RequestsPerS = math.Round(float64(c.Requests.Load())/wall*10) / 10
		r.Throughput.EventsPerS = math.Round(float64(r.Events.Received)/wall*10) / 10
		r.Throughput.LocationsPerS = math.Round(float64(c.Locations.Load())/wall*10) / 10
	}
	r.Actions.Offers = c.Offers.Load()
	r.Actions.Declined = c.OffersDeclined.Load()
	r.Actions.Missed = c.OffersMissed.Load()
	r.Actions.Accepted = c.TripsAccepted.Load()
	r.Actions.Cancels = c.Cancels.Load()
	r.Actions.DropoffChanges = c.DropoffChanges.Load()
	r.Actions.Messages = c.Messages.Load()
	r.Actions.Outages = c.Outages.Load()
	r.Deliveries.Trips, r.Deliveries.StopsCompleted = c.Deliveries.Load(), c.StopsCompleted.Load()
	r.Deliveries.PINsRead, r.Deliveries.PINsEntered, r.Deliveries.PINsRefused = c.PINsRead.Load(), c.PINsEntered.Load(), c.PINsRefused.Load()
	r.Requests = c.Requests.Load()
	r.Errors = c.Errors.Load()
	r.Reconnects = c.Reconnects.Load()
	r.ErrorSample = s.Errs.Top()
	return r
}

// JSON is the report, indented.
func (r Report) JSON() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return append(b, '\n')
}
