// Command hextrack is the hextrack server. `hextrack` (or `hextrack serve`)
// runs the API; `hextrack migrate` applies the archive's schema migrations;
// `hextrack token` mints a token with the configured secret; `hextrack
// eta-eval` measures ETA accuracy on real trips; `hextrack version`.
//
// cmd is the only place that reads flags and environment variables; Main
// wires the packages together and is shared with the end-to-end tests.
package main
