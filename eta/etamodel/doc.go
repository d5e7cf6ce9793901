// Package etamodel is the ETA model as a file: an estimator's learned state
// (eta.State: the speed model, the detour factor, the learned correction,
// the edge speeds learned over the training map)
// with its provenance (Info: a version made of the training time and data,
// the trip and map files' sha256, the split, the time zone), gob-encoded.
// The state has no maps, so the encoding is deterministic and the
// fingerprint (the first 12 hex digits of the file's sha256) names the
// model. `hextrack eta-train` writes it (Train: exactly what eta.Learn
// fits for eta-eval), `hextrack eta-eval --model` scores it, and
// `hextrack serve --eta-model` serves it: one model, scored and served,
// named in /metrics and in every trip.eta. The format is
// "hextrack-eta-model/2" since the edge speeds; "/1" files decode, with
// none.
//
// etamodel imports eta and geo/road, and nothing above them.
package etamodel
