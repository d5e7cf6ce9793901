package history

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/archive"
)

// tripItem is one trip of a list: the record's summary, with its pickup and
// dropoff as the trip's snapshot has them.
type tripItem struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind"`
	Status    string          `json:"status"`
	RiderID   string          `json:"rider_id"`
	DriverID  string          `json:"driver_id,omitempty"`
	Pickup    json.RawMessage `json:"pickup,omitempty"`
	Dropoff   json.RawMessage `json:"dropoff,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	EndedAt   *time.Time      `json:"ended_at,omitempty"`
	Fare      int64           `json:"fare"`
	Currency  string          `json:"currency,omitempty"`
	DistanceM float64         `json:"distance_m"`
	Version   int64           `json:"version"`
}

// tripPage is a page of a list; Next ("" on the last page) is the cursor
// of the following one.
type tripPage struct {
	Trips []tripItem `json:"trips"`
	Next  string     `json:"next,omitempty"`
}

// snapshotTrip is what a list and a receipt read of a trip's archived
// snapshot (a trip.Snapshot JSON).
type snapshotTrip struct {
	Trip struct {
		Pickup       json.RawMessage `json:"pickup"`
		Dropoff      json.RawMessage `json:"dropoff"`
		Payment      string          `json:"payment"`
		CancelReason string          `json:"cancel_reason"`
		CancelledBy  string          `json:"cancelled_by"`
	} `json:"trip"`
}

func decodeSnapshot(t archive.Trip) snapshotTrip {
	var s snapshotTrip
	if len(t.Snapshot) > 0 {
		_ = json.Unmarshal(t.Snapshot, &s) // stored by us; a bad one leaves the fields empty
	}
	return s
}

func item(t archive.Trip) tripItem {
	s := decodeSnapshot(t)
	it := tripItem{ID: t.ID, Kind: t.Kind, Status: t.Status, RiderID: t.RiderID, DriverID: t.DriverID,
		Pickup: s.Trip.Pickup, Dropoff: s.Trip.Dropoff, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		Fare: t.Fare, Currency: t.Currency, DistanceM: t.DistanceM, Version: t.Version}
	if !t.EndedAt.IsZero() {
		e := t.EndedAt
		it.EndedAt = &e
	}
	return it
}

// tripQuery reads the list parameters shared by both lists.
func tripQuery(c echo.Context) (archive.TripQuery, error) {
	p := c.QueryParams()
	q := archive.TripQuery{RiderID: p.Get("rider"), DriverID: p.Get("driver"), Status: p.Get("status"), Cursor: p.Get("cursor")}
	var err error
	if q.Limit, err = limitParam(p); err != nil {
		return q, err
	}
	if q.From, err = timeParam(p, "from"); err != nil {
		return q, err
	}
	q.To, err = timeParam(p, "to")
	return q, err
}

// listTrips is GET /v1/trips: newest first, scoped to the caller (a rider
// their own trips, a driver theirs, ops any).
func (r *Routes) listTrips(c echo.Context) error {
	q, err := tripQuery(c)
	if err != nil {
		return err
	}
	cl := caller.From(c)
	switch cl.Role {
	case tokens.RoleRider:
		if q.RiderID != "" && q.RiderID != cl.Subject {
			return forbidden(cl, "the trips of rider "+q.RiderID)
		}
		q.RiderID = cl.Subject
	case tokens.RoleDriver:
		if q.DriverID != "" && q.DriverID != cl.Subject {
			return forbidden(cl, "the trips of driver "+q.DriverID)
		}
		q.DriverID = cl.Subject
	case tokens.RoleOps:
	case tokens.RoleService:
		if !caller.Allowed(cl, tokens.ScopeTripsRead) {
			return forbidden(cl, "trips")
		}
	default:
		return forbidden(cl, "trips")
	}
	return r.page(c, q)
}

// driverTrips is GET /v1/drivers/{id}/trips: the list of one driver's
// trips, for that driver or ops.
func (r *Routes) driverTrips(c echo.Context) error {
	id := c.Param("id")
	if err := selfOrOps(caller.From(c), id); err != nil {
		return err
	}
	q, err := tripQuery(c)
	if err != nil {
		return err
	}
	if q.DriverID != "" && q.DriverID != id {
		return fmt.Errorf("%w: driver=%s differs from the path's driver", archive.ErrInvalid, clip(q.DriverID))
	}
	q.DriverID = id
	return r.page(c, q)
}

func (r *Routes) page(c echo.Context, q archive.TripQuery) error {
	if r.d.Trips == nil {
		return ErrNoArchive
	}
	p, err := r.d.Trips.ListTrips(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := tripPage{Trips: make([]tripItem, 0, len(p.Trips)), Next: p.Next}
	for _, t := range p.Trips {
		out.Trips = append(out.Trips, item(t))
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return c.JSON(http.StatusOK, out)
}
