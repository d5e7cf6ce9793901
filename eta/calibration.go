package eta

import (
	"math"
	"time"
)

// Calibration corrects raw estimates by a factor learned from finished
// trips, per distance band × time-of-day bucket × weekday/weekend, in log
// space and shrunk towards the coarser level (band only, then global) so
// sparse groups don't overfit. It captures what per-cell speeds can't: the
// fixed cost of short trips (pick-up, lights, parking), the speed of a whole
// trip versus moving pings, rush hours. Immutable once built.
type Calibration struct {
	global float64
	band   [numBands]float64
	group  [numBands][Buckets][2]float64
}

// distance bands of the raw estimate, in meters.
var bandEdges = [...]float64{500, 1000, 2000, 4000, 8000}

const numBands = len(bandEdges) + 1

// shrinkK is how many trips a group needs to weigh as much as its parent.
const shrinkK = 20

func band(m float64) int {
	for i, e := range bandEdges {
		if m < e {
			return i
		}
	}
	return numBands - 1
}

func weekend(t time.Time) int {
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return 1
	}
	return 0
}

// Sample is one finished trip for calibration: the raw estimate (seconds,
// meters), the actual duration and the departure time.
type Sample struct {
	EstSeconds, EstMeters, ActualSeconds float64
	Start                                time.Time
}

// FitCalibration learns a calibration from samples (training trips only).
func FitCalibration(samples []Sample) *Calibration {
	var gs float64
	var gn int
	var bs [numBands]float64
	var bn [numBands]int
	var ss [numBands][Buckets][2]float64
	var sn [numBands][Buckets][2]int
	for _, s := range samples {
		if !(s.EstSeconds > 0) || !(s.ActualSeconds > 0) {
			continue
		}
		r := math.Log(s.ActualSeconds / math.Max(s.EstSeconds, minRawS))
		b, h, w := band(s.EstMeters), BucketOf(s.Start), weekend(s.Start)
		gs += r
		gn++
		bs[b] += r
		bn[b]++
		ss[b][h][w] += r
		sn[b][h][w]++
	}
	c := &Calibration{}
	if gn > 0 {
		c.global = gs / float64(gn)
	}
	for b := range bs {
		c.band[b] = (bs[b] + shrinkK*c.global) / (float64(bn[b]) + shrinkK)
		for h := 0; h < Buckets; h++ {
			for w := 0; w < 2; w++ {
				c.group[b][h][w] = (ss[b][h][w] + shrinkK*c.band[b]) / (float64(sn[b][h][w]) + shrinkK)
			}
		}
	}
	return c
}

// Factor is the multiplier for a raw estimate of m meters leaving at t.
func (c *Calibration) Factor(m float64, t time.Time) float64 {
	return math.Exp(c.group[band(m)][BucketOf(t)][weekend(t)])
}
