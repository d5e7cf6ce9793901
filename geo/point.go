package geo

import (
	"fmt"
	"math"
)

// EarthRadiusM is the mean Earth radius used by every distance in hextrack.
const EarthRadiusM = 6371008.8

// Point is a WGS84 position in degrees.
type Point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Valid reports whether p is a finite position inside the WGS84 ranges.
func (p Point) Valid() bool {
	return !math.IsNaN(p.Lat) && !math.IsNaN(p.Lng) &&
		!math.IsInf(p.Lat, 0) && !math.IsInf(p.Lng, 0) &&
		p.Lat >= -90 && p.Lat <= 90 && p.Lng >= -180 && p.Lng <= 180
}

func (p Point) String() string { return fmt.Sprintf("%.6f,%.6f", p.Lat, p.Lng) }

func rad(d float64) float64 { return d * math.Pi / 180 }

// Distance is the great-circle (haversine) distance between a and b in meters.
func Distance(a, b Point) float64 {
	dLat := rad(b.Lat - a.Lat)
	dLng := rad(b.Lng - a.Lng)
	s := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(rad(a.Lat))*math.Cos(rad(b.Lat))*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * EarthRadiusM * math.Asin(math.Min(1, math.Sqrt(s)))
}

// Bearing is the initial bearing from a to b in degrees, [0, 360).
func Bearing(a, b Point) float64 {
	y := math.Sin(rad(b.Lng-a.Lng)) * math.Cos(rad(b.Lat))
	x := math.Cos(rad(a.Lat))*math.Sin(rad(b.Lat)) -
		math.Sin(rad(a.Lat))*math.Cos(rad(b.Lat))*math.Cos(rad(b.Lng-a.Lng))
	deg := math.Atan2(y, x) * 180 / math.Pi
	return math.Mod(deg+360, 360)
}

// Offset returns the point reached by moving dist meters from p along bearing
// (degrees). Used by simulators and tests to place points.
func Offset(p Point, bearing, dist float64) Point {
	d := dist / EarthRadiusM
	br := rad(bearing)
	lat1, lng1 := rad(p.Lat), rad(p.Lng)
	lat2 := math.Asin(math.Sin(lat1)*math.Cos(d) + math.Cos(lat1)*math.Sin(d)*math.Cos(br))
	lng2 := lng1 + math.Atan2(math.Sin(br)*math.Sin(d)*math.Cos(lat1), math.Cos(d)-math.Sin(lat1)*math.Sin(lat2))
	return Point{Lat: lat2 * 180 / math.Pi, Lng: math.Mod(lng2*180/math.Pi+540, 360) - 180}
}

// Travelled measures a path fix by fix, as a receipt or an odometer
// would: the steps between fixes, a fix counted once it is at least
// jitter metres from the last one counted (GPS noise while stopped or
// slow would otherwise add up), and the last fix always. It is the
// distance of the fixes given to Add in order; a zero Travelled is ready.
type Travelled struct {
	Jitter         float64
	sum            float64
	counted, final Point
	any            bool
}

// Add takes the next fix.
func (t *Travelled) Add(p Point) {
	t.final = p
	if !t.any {
		t.counted, t.any = p, true
		return
	}
	if d := Distance(t.counted, p); d >= t.Jitter {
		t.sum += d
		t.counted = p
	}
}

// M is the distance so far in metres; ok is false before the first fix.
func (t *Travelled) M() (m float64, ok bool) {
	if !t.any {
		return 0, false
	}
	return t.sum + Distance(t.counted, t.final), true
}
