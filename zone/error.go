package zone

import "errors"

// Sentinel errors; api maps each to a status and a code (api/error.go).
// Errors returned by this package wrap them with what was wrong, naming the
// polygon, ring and vertex where there is one.
var (
	// ErrNotFound: no zone has that id.
	ErrNotFound = errors.New("zone not found")
	// ErrInvalid: a field other than the geometry is wrong (name, kind,
	// dwell delay, id).
	ErrInvalid = errors.New("invalid zone")
	// ErrBadGeometry: the geometry is not a GeoJSON Polygon or
	// MultiPolygon, or a ring has fewer than three distinct vertices.
	ErrBadGeometry = errors.New("invalid geometry")
	// ErrUnclosedRing: a ring's last position is not its first.
	ErrUnclosedRing = errors.New("ring is not closed")
	// ErrSelfIntersecting: two edges of a ring cross or touch.
	ErrSelfIntersecting = errors.New("ring intersects itself")
	// ErrTooManyVertices: more vertices than Config.MaxVertices.
	ErrTooManyVertices = errors.New("too many vertices")
	// ErrTooLarge: the area is larger than Config.MaxAreaKM2.
	ErrTooLarge = errors.New("zone is too large")
	// ErrOutOfRange: a coordinate is outside [-180,180]×[-90,90], or a
	// ring spans more than 180° of longitude (crossing the antimeridian is
	// not supported).
	ErrOutOfRange = errors.New("coordinates out of range")
	// ErrOutsideServiceArea: a point (a trip's pickup or drop) is outside
	// every service_area zone while at least one exists.
	ErrOutsideServiceArea = errors.New("outside every service area")
)
