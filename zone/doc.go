// Package zone owns zones (geofences): named GeoJSON Polygon or
// MultiPolygon areas with a kind (service_area, queue, restricted or a
// custom [a-z0-9_]{1,32} kind) and a dwell delay, their validation (closed
// rings, no self-intersection, coordinates in range, vertex and area
// limits: each a sentinel error naming the problem), an in-memory Index
// over many zones, and the pure transition function (Step, Leave) that
// turns a driver's fixes into ordered zone.entered / zone.exited /
// zone.dwell events.
//
// The Index polyfills each zone with H3 cells at ResEdge (r9): cells
// entirely inside are compacted and answer without geometry; boundary
// cells are checked against the polygon exactly (planar in lng/lat, as
// GeoJSON edges are; a point on an edge is inside). Near is the ingest
// path's cheap filter (zones' bounding boxes in buckets of 0.01°).
//
// Transitions: the segment between two fixes is checked for crossings, so
// a driver jumping across a thin zone gets entered then exited; at one
// point of the segment the exits of zones left come before the enters (A
// then B across a shared edge: A.exited, B.entered); a zone.dwell fires
// once per stay when the driver has been inside DwellAfter (on the first
// fix at or after that time, stamped with the due time); Leave exits every
// zone when the driver goes stale or offline. Leaving and re-entering a
// zone between two fixes is not seen.
//
// Storage, the per-driver state shared by every node, and publishing the
// events are zone/zoneredis. zone imports geo only: never api, echo,
// go-redis or feed.
package zone
