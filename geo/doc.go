// Package geo owns geometry and the spatial side of hextrack: Point, distance
// and bearing; H3 cells (it is the only package that imports h3-go); and the
// index of driver positions held in Redis (one sorted set per r9 cell, and
// one GEO set per r6 region that Nearby reads with GEOSEARCH in a script;
// layout in index.go). The road graph is geo/road.
//
// geo imports no other hextrack package, nor echo, gorilla or anything web.
package geo
