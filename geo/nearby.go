package geo

import "time"

// The values of the driver-position index (georedis.Index keeps it in
// Redis): what is written, what a search asks and what it finds. They are
// here, not in georedis, so that packages can declare the index interface
// they need without depending on Redis.

// Entry is one driver's indexed record.
type Entry struct {
	ID     string
	Pos    Point
	Cell   Cell
	Seen   time.Time
	Status string
}

// Update is one driver's new position for the index's UpdateMany.
type Update struct {
	ID     string
	Prev   Cell // the driver's previous index cell, 0 if unknown
	Pos    Point
	Seen   time.Time
	Status string
}

// NearbyQuery asks for drivers around a point.
type NearbyQuery struct {
	Center  Point
	RadiusM float64
	Limit   int
	// Status, when set, keeps only drivers with that status.
	Status string
}

// Hit is a driver found by a nearby search.
type Hit struct {
	Entry
	DistanceM float64
}
