// Package mapmatch matches GPS trails to the road graph with a hidden
// Markov model in the style of Newson and Krumm ("Hidden Markov map
// matching through noise and sparseness", 2009).
//
// Each fix's candidate states are its projections onto the roads within
// Config.RadiusM (both directions of a two-way road). A state's emission
// is a Gaussian of the fix's distance to it (σ = Config.SigmaM); a
// transition's is exponential in the difference between the route
// distance of the two states and the great-circle distance of the two
// fixes (β = Config.BetaM), so a car is believed to drive the road the
// fixes lie along and not to loop round the block between two of them.
// Route distances come from a Dijkstra search bounded by what the fixes
// make plausible (twice the great-circle distance plus a margin, and
// Config.MaxSpeedMS over the time between them); Viterbi keeps the best
// sequence. Where no transition is plausible (a jump, a gap longer than
// Config.MaxGap, a stretch off the map) the chain breaks and a new one
// starts: a trail yields one or more matched chains, never a route
// invented across a gap. Fixes with no road within the radius are left
// out.
//
// A Hop joins two consecutive matched fixes of a chain: the time between
// them and the spans of the edges driven. eta/edgespeed learns per-edge
// speeds from them.
//
// No Go library fitted: the kept Go matcher found (LdDl/horizon) brings
// its own graph format, contraction hierarchies and spatial index, so it
// would mean a second road graph with other edge IDs beside geo/road's.
// This matcher searches geo/road's graph directly.
//
// mapmatch imports geo and geo/road, and nothing of eta.
package mapmatch
