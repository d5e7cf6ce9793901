// Package metrics is what a simulation measures and reports: latency
// histograms (a bounded reservoir, exact count and max), the run's counters
// and fleet gauges, a sample of distinct errors, the server's ping
// rejections told apart from the simulator's deliberate GPS outliers, and
// the Report drivesim prints and writes as JSON. Stats gathers them for one
// run, with the lost/duplicate Checker of package eventcheck.
//
// It must not import client or any hextrack server package: it counts what
// the simulator tells it.
package metrics
