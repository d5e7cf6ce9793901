package history

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
)

// Bounds of what one receipt reads: pages of events and of trail points.
// A trip with more (hours of fixes) is summed over what these hold.
const (
	maxEventPages = 10 // × archive.MaxEventLimit events
	maxTrailPages = 10 // × archive.MaxTrailLimit points
)

// Receipt is a finished trip's receipt.
type Receipt struct {
	TripID   string `json:"trip_id"`
	Kind     string `json:"kind"`
	Status   string `json:"status"`
	RiderID  string `json:"rider_id"`
	DriverID string `json:"driver_id,omitempty"`
	// PaymentMethod is the trip's: "cash" or "online".
	PaymentMethod string     `json:"payment_method,omitempty"`
	RequestedAt   time.Time  `json:"requested_at"`
	ArrivedAt     *time.Time `json:"arrived_at,omitempty"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	EndedAt       time.Time  `json:"ended_at"`
	// DistanceM is the distance travelled along the trail: the sum of
	// great-circle steps between its fixes, a fix counted once it is
	// JitterM from the last one counted (GPS noise while stopped or slow
	// would otherwise add up), and the last fix always; the trip record's
	// distance when no trail was archived.
	DistanceM float64 `json:"distance_m"`
	// DurationS runs from the start of the ride (pickup) to its end; 0
	// when it never started.
	DurationS float64 `json:"duration_s"`
	// WaitingS runs from the driver's arrival to the start of the ride.
	WaitingS     float64       `json:"waiting_s"`
	Stops        []Stop        `json:"stops"`
	Fare         Fare          `json:"fare"`
	Payments     []PaymentLine `json:"payments"`
	CancelReason string        `json:"cancel_reason,omitempty"`
	CancelledBy  string        `json:"cancelled_by,omitempty"`
}

// Stop is a place of the trip and when it was reached.
type Stop struct {
	Kind    string          `json:"kind"` // pickup, dropoff
	Place   json.RawMessage `json:"place"`
	At      *time.Time      `json:"at,omitempty"`
	Address string          `json:"-"`
}

// Fare is the fare's lines and their total, in minor units of Currency.
type Fare struct {
	Lines    []FareLine `json:"lines"`
	Total    int64      `json:"total"`
	Currency string     `json:"currency,omitempty"`
}

// FareLine is one line of a fare.
type FareLine struct {
	Label  string `json:"label"`
	Amount int64  `json:"amount"`
}

// PaymentLine is a payment of the trip as the ledger last recorded it.
type PaymentLine struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	UpdatedAt time.Time `json:"updated_at"`
}

// receipt is GET /v1/trips/{id}/receipt: JSON, or a printable HTML page
// when the client accepts text/html (or asks ?format=html).
func (r *Routes) receipt(c echo.Context) error {
	if r.d.Trips == nil || r.d.Records == nil {
		return ErrNoArchive
	}
	format := c.QueryParam("format")
	if format != "" && format != "json" && format != "html" {
		return fmt.Errorf("%w: format must be json or html", archive.ErrInvalid)
	}
	ctx, id, cl := c.Request().Context(), c.Param("id"), caller.From(c)
	t, err := r.d.Trips.Trip(ctx, id)
	if err != nil {
		return err
	}
	if !canSee(cl, t) {
		return forbidden(cl, "trip "+id)
	}
	if t.Status != trip.StatusCompleted && t.Status != trip.StatusCancelled {
		return fmt.Errorf("%w: trip %s is %s; a receipt is made once it is completed or cancelled", ErrNotEnded, id, t.Status)
	}
	rc, err := r.build(ctx, t)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "private, no-store")
	if format == "html" || format == "" && strings.Contains(c.Request().Header.Get(echo.HeaderAccept), "text/html") {
		var b strings.Builder
		if err := receiptPage.Execute(&b, rc); err != nil {
			return err
		}
		return c.HTML(http.StatusOK, b.String())
	}
	return c.JSON(http.StatusOK, rc)
}

// build reads the trip's events, trail and ledger and makes its receipt.
func (r *Routes) build(ctx context.Context, t archive.Trip) (Receipt, error) {
	s := decodeSnapshot(t)
	rc := Receipt{TripID: t.ID, Kind: t.Kind, Status: t.Status, RiderID: t.RiderID, DriverID: t.DriverID,
		PaymentMethod: s.Trip.Payment, RequestedAt: t.CreatedAt, EndedAt: t.EndedAt,
		CancelReason: s.Trip.CancelReason, CancelledBy: s.Trip.CancelledBy, Payments: []PaymentLine{}}
	if rc.EndedAt.IsZero() {
		rc.EndedAt = t.UpdatedAt
	}
	arrived, started, err := r.milestones(ctx, t.ID)
	if err != nil {
		return Receipt{}, err
	}
	rc.ArrivedAt, rc.StartedAt = arrived, started
	if started != nil {
		rc.DurationS = rc.EndedAt.Sub(*started).Seconds()
		if arrived != nil && started.After(*arrived) {
			rc.WaitingS = started.Sub(*arrived).Seconds()
		}
	}
	if rc.DistanceM, err = r.distance(ctx, t); err != nil {
		return Receipt{}, err
	}
	rc.Stops = []Stop{{Kind: "pickup", Place: s.Trip.Pickup, At: started}, {Kind: "dropoff", Place: s.Trip.Dropoff}}
	if t.Status == trip.StatusCompleted {
		end := rc.EndedAt
		rc.Stops[1].At = &end
	}
	for i := range rc.Stops {
		var p struct {
			Address string `json:"address"`
		}
		_ = json.Unmarshal(rc.Stops[i].Place, &p)
		rc.Stops[i].Address = p.Address
	}
	entries, err := r.d.Records.Ledger(ctx, t.ID)
	if err != nil {
		return Receipt{}, err
	}
	rc.Payments = payments(entries)
	rc.Fare = fare(t, rc.Payments)
	return rc, nil
}

// milestones are when the driver arrived at the pickup and when the ride
// started (the first trip.status events to driver_arrived and in_progress).
func (r *Routes) milestones(ctx context.Context, id string) (arrived, started *time.Time, err error) {
	q := archive.EventQuery{Topic: trip.Topic(id), Limit: archive.MaxEventLimit}
	for range maxEventPages {
		evs, err := r.d.Records.Events(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range evs {
			var d struct {
				Status string `json:"status"`
			}
			if e.Type != trip.EventStatus || json.Unmarshal(e.Data, &d) != nil {
				continue
			}
			ts := e.TS
			switch {
			case d.Status == trip.StatusArrived && arrived == nil:
				arrived = &ts
			case d.Status == trip.StatusInProgress && started == nil:
				started = &ts
			}
		}
		if len(evs) < q.Limit || started != nil {
			return arrived, started, nil
		}
		q.After = evs[len(evs)-1].ID
	}
	return arrived, started, nil
}

// JitterM is how far a fix must be from the last one counted before the
// step to it counts toward a trip's distance (geo.Travelled): about a
// phone's GPS noise, and tripredis's breadcrumb distance.
const JitterM = 25

// distance measures the trail (see Receipt.DistanceM); the trip record's
// distance when no trail was archived.
func (r *Routes) distance(ctx context.Context, t archive.Trip) (float64, error) {
	q := archive.TrailQuery{TripID: t.ID, Limit: archive.MaxTrailLimit}
	odo := geo.Travelled{Jitter: JitterM}
	for range maxTrailPages {
		pts, err := r.d.Records.Trail(ctx, q)
		if err != nil {
			return 0, err
		}
		for _, p := range pts {
			odo.Add(geo.Point{Lat: p.Lat, Lng: p.Lng})
		}
		if len(pts) < q.Limit {
			break
		}
		q.After = pts[len(pts)-1].Seq
	}
	if m, ok := odo.M(); ok {
		return m, nil
	}
	return t.DistanceM, nil
}

// payments are the trip's payments, each as its latest ledger entry of
// kind payment recorded it (webhook entries are the gateway's messages,
// not a state of the payment).
func payments(entries []archive.Entry) []PaymentLine {
	out := []PaymentLine{}
	at := map[string]int{}
	for _, e := range entries { // oldest first: a later entry wins
		if e.Kind != archive.EntryPayment {
			continue
		}
		l := PaymentLine{ID: e.PaymentID, Status: e.Status, Amount: e.Amount, Currency: e.Currency, UpdatedAt: e.At}
		if i, ok := at[e.PaymentID]; ok {
			out[i] = l
			continue
		}
		at[e.PaymentID] = len(out)
		out = append(out, l)
	}
	return out
}

// fare is the trip record's fare, else the amount of its payment (a
// delivery paid online is priced when the payment is made).
func fare(t archive.Trip, pays []PaymentLine) Fare {
	f := Fare{Lines: []FareLine{}, Currency: t.Currency}
	amount := t.Fare
	if amount == 0 && len(pays) > 0 {
		amount, f.Currency = pays[len(pays)-1].Amount, pays[len(pays)-1].Currency
	}
	if amount > 0 {
		f.Lines = append(f.Lines, FareLine{Label: t.Kind + " fare", Amount: amount})
		f.Total = amount
	}
	return f
}
