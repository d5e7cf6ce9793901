// Package road owns the road graph: loading it (an OpenStreetMap PBF extract,
// LoadOSM; a synthetic street grid for runs without a map, SyntheticCity;
// explicit nodes and ways, BuildGraph), snapping points onto it (Snap, Near),
// routing through it (Route, RouteWeighted, RouteMulti: A* over free-flow or
// caller-given edge times) and drawing it (GeoJSON).
//
// A Graph is immutable once built and safe for concurrent use. Its types
// each do one job: the network arrays and their accessors (graph.go), the
// router (route.go), the snapping grid (snap.go), the drawing (geojson.go);
// building is the builder's (build.go).
//
// road imports only geo (Point, Distance) among hextrack packages, and no
// Redis, echo, gorilla or anything web.
package road
