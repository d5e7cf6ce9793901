package eta

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// Trip is a recorded trip for evaluation: its fixes in time order (every GPS
// point for Porto-style tracks, just pick-up and drop-off for taxi records)
// and, when the record has it, the metered distance.
type Trip struct {
	ID      string
	Fixes   []Fix
	DrivenM float64 // metered distance; 0 when unknown
}

// Duration is the time from the first to the last fix.
func (t Trip) Duration() time.Duration {
	if len(t.Fixes) < 2 {
		return 0
	}
	return t.Fixes[len(t.Fixes)-1].Time.Sub(t.Fixes[0].Time)
}

// ErrFormat: the CSV is neither the Porto nor a NYC taxi format.
var ErrFormat = errors.New("eta: unknown trip CSV format")

// ReadTrips reads trips from CSV in either format, detected by header:
//   - Porto (ECML/PKDD 2015): "shape" = WKT LINESTRING (lon lat, ...),
//     "timestamps" = unix seconds, one per point; "TRIP_ID".
//   - NYC taxi: pick-up/drop-off datetimes and coordinates under the green
//     names (lpepPickupDatetime, pickupLongitude, ...), the yellow names
//     (tpepPickupDateTime, startLon, ...) or the TLC snake_case names;
//     "tripDistance" in miles when present. Datetimes are local wall time.
//
// Unix timestamps are shown in loc and wall-clock datetimes are read in loc
// (nil: UTC); loc decides the time-of-day buckets. Rows that don't parse are
// skipped and counted in skipped.
func ReadTrips(r io.Reader, loc *time.Location) (trips []Trip, skipped int, err error) {
	if loc == nil {
		loc = time.UTC
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, 0, fmt.Errorf("eta: read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		k := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")), "_", ""))
		col[k] = i
	}
	find := func(names ...string) int {
		for _, n := range names {
			if i, ok := col[n]; ok {
				return i
			}
		}
		return -1
	}
	var parse func(rec []string, row int) (Trip, bool)
	if shape, ts := find("shape", "polyline"), find("timestamps"); shape >= 0 && ts >= 0 {
		id := find("tripid")
		parse = func(rec []string, row int) (Trip, bool) { return parsePorto(rec, shape, ts, id, row, loc) }
	} else {
		c := [...]int{
			find("lpeppickupdatetime", "tpeppickupdatetime", "pickupdatetime"),
			find("lpepdropoffdatetime", "tpepdropoffdatetime", "dropoffdatetime"),
			find("pickuplatitude", "startlat"), find("pickuplongitude", "startlon"),
			find("dropofflatitude", "endlat"), find("dropofflongitude", "endlon"),
		}
		for _, i := range c {
			if i < 0 {
				return nil, 0, ErrFormat
			}
		}
		dist, id := find("tripdistance"), find("id", "tripid")
		parse = func(rec []string, row int) (Trip, bool) { return parseTaxi(rec, c, dist, id, row, loc) }
	}
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				skipped++
				continue
			}
			return nil, skipped, fmt.Errorf("eta: read trips: %w", err)
		}
		t, ok := parse(rec, row)
		if !ok {
			skipped++
			continue
		}
		trips = append(trips, t)
	}
	return trips, skipped, nil
}

func field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

func parsePorto(rec []string, shapeCol, tsCol, idCol, row int, loc *time.Location) (Trip, bool) {
	s := field(rec, shapeCol)
	var pts []geo.Point
	if strings.HasPrefix(s, "[") { // the original Kaggle POLYLINE: [[lon,lat],...]
		s = strings.Trim(s, "[]")
		for _, pair := range strings.Split(s, "],[") {
			lon, lat, ok := strings.Cut(pair, ",")
			if !ok {
				return Trip{}, false
			}
			p, ok := lonLat(lon, lat)
			if !ok {
				return Trip{}, false
			}
			pts = append(pts, p)
		}
	} else {
		in, ok := strings.CutPrefix(s, "LINESTRING")
		if !ok {
			return Trip{}, false
		}
		in = strings.Trim(strings.TrimSpace(in), "()")
		for _, pair := range strings.Split(in, ",") {
			f := strings.Fields(pair)
			if len(f) != 2 {
				return Trip{}, false
			}
			p, ok := lonLat(f[0], f[1])
			if !ok {
				return Trip{}, false
			}
			pts = append(pts, p)
		}
	}
	tss := strings.Split(strings.Trim(field(rec, tsCol), "[]"), ",")
	if len(tss) != len(pts) || len(pts) < 2 {
		return Trip{}, false
	}
	t := Trip{ID: field(rec, idCol), Fixes: make([]Fix, len(pts))}
	if t.ID == "" {
		t.ID = "row-" + strconv.Itoa(row)
	}
	for i, s := range tss {
		u, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return Trip{}, false
		}
		t.Fixes[i] = Fix{Point: pts[i], Time: time.Unix(u, 0).In(loc)}
		if i > 0 && !t.Fixes[i].Time.After(t.Fixes[i-1].Time) {
			return Trip{}, false
		}
	}
	return t, true
}

func lonLat(lon, lat string) (geo.Point, bool) {
	x, err1 := strconv.ParseFloat(strings.TrimSpace(lon), 64)
	y, err2 := strconv.ParseFloat(strings.TrimSpace(lat), 64)
	p := geo.Point{Lat: y, Lng: x}
	return p, err1 == nil && err2 == nil && p.Valid()
}

var taxiLayouts = []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04:05.0000000", "01/02/2006 03:04:05 PM", time.RFC3339}

func parseTaxiTime(s string, loc *time.Location) (time.Time, bool) {
	for _, l := range taxiLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseTaxi(rec []string, c [6]int, distCol, idCol, row int, loc *time.Location) (Trip, bool) {
	t0, ok1 := parseTaxiTime(field(rec, c[0]), loc)
	t1, ok2 := parseTaxiTime(field(rec, c[1]), loc)
	a, ok3 := lonLat(field(rec, c[3]), field(rec, c[2]))
	b, ok4 := lonLat(field(rec, c[5]), field(rec, c[4]))
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return Trip{}, false
	}
	t := Trip{ID: field(rec, idCol), Fixes: []Fix{{a, t0}, {b, t1}}}
	if t.ID == "" {
		t.ID = "row-" + strconv.Itoa(row)
	}
	if d, err := strconv.ParseFloat(field(rec, distCol), 64); err == nil && d > 0 {
		t.DrivenM = d * 1609.344
	}
	return t, true
}
