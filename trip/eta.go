package trip

import "time"

// EventETA is the durable trip event carrying a new ETA (see LiveETA).
const EventETA = "trip.eta"

// ETA legs: to the pickup before it (driver_assigned, driver_arrived), to
// the dropoff after it (in_progress).
const (
	LegPickup  = "pickup"
	LegDropoff = "dropoff"
)

// ETA is a trip's latest estimate, as the snapshot's "eta" and (without
// ComputedAt) the data of trip.eta. Seconds is the estimate when it was
// computed; ArriveAt is ComputedAt + Seconds, the figure to count down to.
// RouteVersion increases with every estimate stored for the trip (emitted
// or not): a client keeps the ETA with the highest one.
type ETA struct {
	Leg          string    `json:"leg"`
	Seconds      float64   `json:"eta_s"`
	ArriveAt     time.Time `json:"arrive_at"`
	DistanceM    float64   `json:"distance_m"`
	RouteVersion int64     `json:"route_version"`
	ComputedAt   time.Time `json:"computed_at"`
}

// ETAModel names the ETA model an estimate came from (trip.eta's
// "model"): its version and fingerprint, as in /metrics'
// hextrack_eta_model_info.
type ETAModel struct {
	Version     string `json:"version"`
	Fingerprint string `json:"fingerprint"`
}

// ETAInput is what an estimate of a trip needs, read by OpenGate
// (tripredis.ETAs) when it opened the gate.
type ETAInput struct {
	Status, Driver string
	// Leg is the ETA leg of Status ("" for none); To is its target place
	// and Target the target as stored (the estimate is kept only if it is
	// unchanged).
	Leg    string
	To     Place
	Target string
	Pickup Place
	// Fix is the driver's stored fix (nil if none, or another driver's).
	Fix *Location
	// EmittedSeconds, EmittedTarget ("leg:target") and EmittedRV ("0":
	// none) describe the last trip.eta sent.
	EmittedSeconds float64
	EmittedTarget  string
	EmittedRV      string
	// FixAt is the time (ms) of the fix the latest estimate started from.
	FixAt int64
	// Open are the trip's stops that are not final, in order (their
	// per-stop ETAs go in trip.eta's "stops").
	Open []Stop
}

// ETAGate is the answer of OpenGate (tripredis.ETAs): Gone (no such
// trip), Open with the input, or closed for Wait with Newest the newest
// fix (ms) estimated or being estimated.
type ETAGate struct {
	Gone   bool
	Open   bool
	Wait   time.Duration
	Newest int64
	Input  ETAInput
}

// ETAWrite is one estimate to store: made from in at Now, arriving at
// Arrive; Emit asks for a trip.eta event (sent only if no other was sent
// since in was read); FixAt is the time (ms) of the fix it started from
// (0: none); Model names the model that made it (nil: none named).
type ETAWrite struct {
	In      ETAInput
	Seconds float64
	Meters  float64
	Now     time.Time
	Arrive  time.Time
	Emit    bool
	FixAt   int64
	Model   *ETAModel
	// Stops are the ETAs of the open stops, in order, cumulative (nil:
	// none sent).
	Stops []StopETA
}

// ETAPromises are the first ETAs promised for a trip's legs (seconds) and
// when (ms), and when the pickup leg ended (ms; 0: unknown).
type ETAPromises struct {
	Pickup, PickupAt, ArrivedAt, Dropoff, DropoffAt float64
}
