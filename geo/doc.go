// Package geo owns geometry: Point, distance, bearing and offset; H3 cells
// (it is the only package that imports h3-go) with the resolutions of the
// driver-position index; and the values that index stores and returns
// (Entry, Update, NearbyQuery, Hit).
//
// The index itself, in Redis, is geo/georedis; the road graph (OSM PBF
// loader, synthetic city, snapping, routing) is geo/road. geo imports no
// other hextrack package, nor go-redis, echo, gorilla or anything web.
package geo
