package trip

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"
	"unicode/utf8"
)

// Stop kinds and statuses. A stop moves pending → arriving (the ETA to it
// fell under the approaching threshold) → arrived (the driver dwelt near
// it) → completed | failed | skipped; arriving and arrived may be passed
// over, and the last three are final.
const (
	StopPickup = "pickup"
	StopDrop   = "drop"

	StopPending   = "pending"
	StopArriving  = "arriving"
	StopArrived   = "arrived"
	StopCompleted = "completed"
	StopFailed    = "failed"
	StopSkipped   = "skipped"
)

// Durable events of a trip's stops (on the trip's feed, like trip.status).
const (
	EventStopAdded       = "stop.added"
	EventStopRemoved     = "stop.removed"
	EventStopReordered   = "stop.reordered"
	EventStopStatus      = "stop.status"
	EventStopApproaching = "stop.approaching"
	EventStopArrived     = "stop.arrived"
)

// Proof kinds a ProofFiles store holds for a drop stop.
const (
	ProofPhoto     = "photo"
	ProofSignature = "signature"
)

// ProofFiles says whether a proof-of-delivery file of kind (ProofPhoto,
// ProofSignature) was uploaded for a trip's stop (the pod package's store
// implements it; tripredis.Service.SetProofFiles installs it).
type ProofFiles interface {
	Has(ctx context.Context, tripID, stopID, kind string) (bool, error)
}

// Errors of stops, mapped by api's error table.
var (
	// ErrTooFar: a stop completed too far from it (422 too_far_from_stop).
	ErrTooFar = errors.New("too far from the stop")
	// ErrProofRequired: the stop's proof policy asks for a photo or a
	// signature that was not uploaded (422 proof_required).
	ErrProofRequired = errors.New("proof of delivery required")
	// ErrInvalidPIN: a wrong or missing delivery PIN (422 invalid_pin).
	ErrInvalidPIN = errors.New("wrong delivery PIN")
	// ErrPINExhausted: too many wrong PINs for the stop; only ops can
	// complete it now, with override (429 pin_attempts_exhausted).
	ErrPINExhausted = errors.New("too many wrong PINs for this stop")
	// ErrStopStatus: the stop's status forbids the action: removing or
	// reordering a stop that is not pending, acting on a final stop (409
	// stop_status).
	ErrStopStatus = errors.New("not allowed in the stop's status")
	// ErrStopsPending: the trip cannot complete while other stops are open
	// (409 stops_pending).
	ErrStopsPending = errors.New("the trip has open stops")
)

// MaxStops bounds a trip's stops.
const MaxStops = 25

// LatLng is a stop's location.
type LatLng struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Contact is who to meet at a stop.
type Contact struct {
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Window is when a stop is expected (either end may be zero: open).
type Window struct {
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
}

// Proof is a drop stop's proof-of-delivery policy, chosen by the trip's
// creator: a PIN shown to the recipient and entered by the driver, an
// uploaded photo, an uploaded signature.
type Proof struct {
	PIN       bool `json:"pin,omitempty"`
	Photo     bool `json:"photo,omitempty"`
	Signature bool `json:"signature,omitempty"`
}

// Stop is one stop of a trip. IDs are "s1", "s2", … in the order the stops
// were created (a trip's counter, never reused).
type Stop struct {
	ID            string     `json:"id"`
	Kind          string     `json:"kind"`
	Location      LatLng     `json:"location"`
	Address       string     `json:"address,omitempty"`
	Contact       *Contact   `json:"contact,omitempty"`
	Instructions  string     `json:"instructions,omitempty"`
	Window        *Window    `json:"window,omitempty"`
	Status        string     `json:"status"`
	Proof         *Proof     `json:"proof,omitempty"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	FailureReason string     `json:"failure_reason,omitempty"`
	Override      bool       `json:"override,omitempty"`
	// PIN is the delivery PIN, set only in what the trip's rider and its
	// share-link viewers read (never stored in the stops, never sent to the
	// driver).
	PIN string `json:"pin,omitempty"`
}

// Final reports whether the stop is completed, failed or skipped.
func (s Stop) Final() bool {
	return s.Status == StopCompleted || s.Status == StopFailed || s.Status == StopSkipped
}

// StopInput is a stop as a create or add request gives it.
type StopInput struct {
	Kind         string   `json:"kind"`
	Location     LatLng   `json:"location"`
	Address      string   `json:"address,omitempty"`
	Contact      *Contact `json:"contact,omitempty"`
	Instructions string   `json:"instructions,omitempty"`
	Window       *Window  `json:"window,omitempty"`
	Proof        *Proof   `json:"proof,omitempty"`
}

// MaxInstructionsLen bounds a stop's instructions and a contact's fields,
// in runes.
const MaxInstructionsLen = 500

// Validate checks a stop named name ("stops[2]"): kind, location, texts,
// window, and a proof policy on drop stops only. ErrInvalid otherwise.
func (in StopInput) Validate(name string) error {
	if in.Kind != StopPickup && in.Kind != StopDrop {
		return fmt.Errorf("%w: %s kind must be %q or %q", ErrInvalid, name, StopPickup, StopDrop)
	}
	if err := (Place{Lat: in.Location.Lat, Lng: in.Location.Lng, Address: in.Address}).Validate(name); err != nil {
		return err
	}
	texts := []string{in.Instructions}
	if in.Contact != nil {
		texts = append(texts, in.Contact.Name, in.Contact.Phone)
	}
	for _, t := range texts {
		if !utf8.ValidString(t) || utf8.RuneCountInString(t) > MaxInstructionsLen {
			return fmt.Errorf("%w: %s instructions and contact must be valid UTF-8 of at most %d characters", ErrInvalid, name, MaxInstructionsLen)
		}
	}
	if w := in.Window; w != nil && !w.From.IsZero() && !w.To.IsZero() && w.To.Before(w.From) {
		return fmt.Errorf("%w: %s window ends before it starts", ErrInvalid, name)
	}
	if in.Proof != nil && *in.Proof != (Proof{}) && in.Kind != StopDrop {
		return fmt.Errorf("%w: %s: a proof policy is for drop stops only", ErrInvalid, name)
	}
	return nil
}

// Stop returns the new pending stop id of the input.
func (in StopInput) Stop(id string) Stop {
	s := Stop{ID: id, Kind: in.Kind, Location: in.Location, Address: in.Address, Contact: in.Contact,
		Instructions: in.Instructions, Window: in.Window, Status: StopPending}
	if in.Proof != nil && *in.Proof != (Proof{}) {
		p := *in.Proof
		s.Proof = &p
	}
	return s
}

// StopInputs returns the stops of a create request: its Stops, or the
// pickup and the dropoff of a request that names only those (the ride's
// two-stop case). The request must have been normalized.
func (r CreateRequest) StopInputs() []StopInput {
	if len(r.Stops) > 0 {
		return r.Stops
	}
	return []StopInput{
		{Kind: StopPickup, Location: LatLng{r.Pickup.Lat, r.Pickup.Lng}, Address: r.Pickup.Address},
		{Kind: StopDrop, Location: LatLng{r.Dropoff.Lat, r.Dropoff.Lng}, Address: r.Dropoff.Address},
	}
}

// normalizeStops checks a request's Stops (1 to MaxStops, the first a
// pickup, at least one drop, each valid) and sets Pickup and Dropoff to
// the first pickup and the last drop.
func (r *CreateRequest) normalizeStops() error {
	if r.Pickup != (Place{}) || r.Dropoff != (Place{}) {
		return fmt.Errorf("%w: give either stops or pickup and dropoff, not both", ErrInvalid)
	}
	if len(r.Stops) > MaxStops {
		return fmt.Errorf("%w: at most %d stops", ErrInvalid, MaxStops)
	}
	for i, s := range r.Stops {
		if err := s.Validate(fmt.Sprintf("stops[%d]", i)); err != nil {
			return err
		}
	}
	stops := make([]Stop, len(r.Stops))
	for i, in := range r.Stops {
		stops[i] = in.Stop("")
	}
	if err := CheckStops(stops); err != nil {
		return err
	}
	r.Pickup, r.Dropoff = Ends(stops)
	return nil
}

// CheckStops checks an ordered list of stops: at most MaxStops, the first
// a pickup, at least one drop.
func CheckStops(stops []Stop) error {
	if len(stops) > MaxStops {
		return fmt.Errorf("%w: at most %d stops", ErrInvalid, MaxStops)
	}
	if len(stops) == 0 || stops[0].Kind != StopPickup {
		return fmt.Errorf("%w: the first stop must be a pickup", ErrInvalid)
	}
	for _, s := range stops {
		if s.Kind == StopDrop {
			return nil
		}
	}
	return fmt.Errorf("%w: a trip needs at least one drop stop", ErrInvalid)
}

// Ends returns a trip's pickup and dropoff from its stops: the first
// pickup and the last drop.
func Ends(stops []Stop) (pickup, dropoff Place) {
	for _, s := range stops {
		if s.Kind == StopPickup {
			pickup = Place{Lat: s.Location.Lat, Lng: s.Location.Lng, Address: s.Address}
			break
		}
	}
	for i := len(stops) - 1; i >= 0; i-- {
		if stops[i].Kind == StopDrop {
			dropoff = Place{Lat: stops[i].Location.Lat, Lng: stops[i].Location.Lng, Address: stops[i].Address}
			break
		}
	}
	return pickup, dropoff
}

// OpenStops counts the stops that are not final.
func OpenStops(stops []Stop) int {
	n := 0
	for _, s := range stops {
		if !s.Final() {
			n++
		}
	}
	return n
}

// NewPIN returns a delivery PIN: 6 random digits (crypto/rand).
func NewPIN() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// PINHash is what is kept of stop stopID's PIN of trip tripID: SHA-256 of
// the three, hex.
func PINHash(tripID, stopID, pin string) string {
	sum := sha256.Sum256([]byte(tripID + "\x00" + stopID + "\x00" + pin))
	return hex.EncodeToString(sum[:])
}

// NextOpen returns the index of the first stop that is not final, -1 if
// none.
func NextOpen(stops []Stop) int {
	for i, s := range stops {
		if !s.Final() {
			return i
		}
	}
	return -1
}

// StopETA is one stop's ETA in trip.eta's "stops": seconds from the
// estimate, cumulative along the order of the open stops.
type StopETA struct {
	StopID  string  `json:"stop_id"`
	Seconds float64 `json:"eta_s"`
}

// CompleteStop is a driver's (or ops') completion of a stop: where the
// driver is (nil: the last stored fix), the PIN of a PIN-protected drop, and
// ops' override of the geotag, PIN and proof checks.
type CompleteStop struct {
	Lat      *float64 `json:"lat,omitempty"`
	Lng      *float64 `json:"lng,omitempty"`
	PIN      string   `json:"pin,omitempty"`
	Override bool     `json:"override,omitempty"`
}

// Validate checks the position (both or neither, in range).
func (c CompleteStop) Validate() error {
	if (c.Lat == nil) != (c.Lng == nil) {
		return fmt.Errorf("%w: give both lat and lng, or neither", ErrInvalid)
	}
	if c.Lat != nil {
		if math.IsNaN(*c.Lat) || math.IsNaN(*c.Lng) || *c.Lat < -90 || *c.Lat > 90 || *c.Lng < -180 || *c.Lng > 180 {
			return fmt.Errorf("%w: lat must be within [-90,90] and lng within [-180,180]", ErrInvalid)
		}
	}
	if len(c.PIN) > 16 {
		return fmt.Errorf("%w: pin is at most 16 characters", ErrInvalid)
	}
	return nil
}
