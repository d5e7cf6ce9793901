package history

import (
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/archive"
)

// defaultShiftWindow is the range of /shifts without from and to: the
// last seven days.
const defaultShiftWindow = 7 * 24 * time.Hour

// Shifts is a driver's activity over [From, To): online spans, the time
// online, the km driven on their trips and their trips, in total and per
// UTC day.
type Shifts struct {
	DriverID  string    `json:"driver_id"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	OnlineS   float64   `json:"online_s"`
	KmDriven  float64   `json:"km_driven"`
	Trips     int64     `json:"trips"`
	Completed int64     `json:"completed"`
	Shifts    []Shift   `json:"shifts"`
	Days      []Day     `json:"days"`
}

// Shift is one online span; End is absent while it is still open (its
// online time then runs to now, or to the range's end).
type Shift struct {
	Start   time.Time  `json:"start"`
	End     *time.Time `json:"end,omitempty"`
	OnlineS float64    `json:"online_s"`
}

// Day is a UTC day with trips or time online, newest first.
type Day struct {
	Date      string  `json:"date"` // 2006-01-02
	Trips     int64   `json:"trips"`
	Completed int64   `json:"completed"`
	KmDriven  float64 `json:"km_driven"`
	OnlineS   float64 `json:"online_s"`
}

// shifts is GET /v1/drivers/{id}/shifts?from=&to= (RFC 3339; default the
// last seven days, at most archive.MaxWindow).
func (r *Routes) shifts(c echo.Context) error {
	id := c.Param("id")
	if err := selfOrOps(caller.From(c), id); err != nil {
		return err
	}
	if r.d.Drivers == nil {
		return ErrNoArchive
	}
	p := c.QueryParams()
	from, err := timeParam(p, "from")
	if err != nil {
		return err
	}
	to, err := timeParam(p, "to")
	if err != nil {
		return err
	}
	now := r.d.Now()
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-defaultShiftWindow)
	}
	q := archive.DriverQuery{DriverID: id, From: from, To: to}
	ctx := c.Request().Context()
	spans, err := r.d.Drivers.Shifts(ctx, q)
	if err != nil {
		return err
	}
	days, err := r.d.Drivers.DriverDays(ctx, q)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return c.JSON(http.StatusOK, summarize(q, spans, days, now))
}

// summarize totals the shifts and days of q.
func summarize(q archive.DriverQuery, spans []archive.Shift, days []archive.Day, now time.Time) Shifts {
	out := Shifts{DriverID: q.DriverID, From: q.From.UTC(), To: q.To.UTC(), Shifts: []Shift{}, Days: []Day{}}
	byDate := map[string]*Day{}
	day := func(t time.Time) *Day {
		k := t.UTC().Format(time.DateOnly)
		if d := byDate[k]; d != nil {
			return d
		}
		d := &Day{Date: k}
		byDate[k] = d
		return d
	}
	for _, s := range spans {
		sh := Shift{Start: s.Start}
		end := s.End
		if end.IsZero() {
			end = earliest(now, q.To) // still open: online until now, within the range
		} else {
			e := s.End
			sh.End = &e
		}
		if end.After(s.Start) {
			sh.OnlineS = end.Sub(s.Start).Seconds()
			// Split the span over the UTC days it covers.
			for t := s.Start; t.Before(end); {
				next := t.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
				next = earliest(next, end)
				day(t).OnlineS += next.Sub(t).Seconds()
				t = next
			}
		}
		out.OnlineS += sh.OnlineS
		out.Shifts = append(out.Shifts, sh)
	}
	for _, d := range days {
		x := day(d.Date)
		x.Trips, x.Completed, x.KmDriven = d.Trips, d.Completed, d.DistanceM/1000
		out.Trips += d.Trips
		out.Completed += d.Completed
		out.KmDriven += d.DistanceM / 1000
	}
	for _, d := range byDate {
		out.Days = append(out.Days, *d)
	}
	sort.Slice(out.Days, func(i, j int) bool { return out.Days[i].Date > out.Days[j].Date })
	return out
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
