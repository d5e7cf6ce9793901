// Package gbm is a small gradient-boosted regression-tree learner (squared loss), written
// here rather than imported: the corrections it fits have a dozen features
// and a few thousand rows, and a histogram learner of that size is a page
// of code. Features are bucketed once into at most maxBins quantile bins;
// trees grow depth-first to a fixed depth; each tree fits the residuals of a
// seeded row subsample. Deterministic for a given input.
//
// It is the learner of eta's learned correction (eta/correction.go);
// its Booster is gob-encoded inside eta.State, so its field names are
// part of the model file's format.
package gbm
