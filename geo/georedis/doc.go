// Package georedis keeps the index of driver positions in Redis (Index): one
// sorted set per r9 cell and one GEO set per r6 region, written by Lua
// scripts that compare timestamps so a driver always ends in the cell of its
// newest fix, searched by Nearby (GEOSEARCH in a script, or a walk of the
// cells near the poles and the antimeridian) and Scan, and trimmed of stale
// drivers. The layout is documented on Index (index.go).
//
// georedis imports only geo among hextrack packages. Packages that need the
// index declare the interface they use, in geo's types.
package georedis
