package eta

import (
	"math"

	"github.com/hextrack/hextrack/geo"
)

// odIndex remembers finished journeys (start, end, duration) and answers
// "how fast were journeys from near here to near there": a Gaussian-kernel
// mean over both ends of the journeys' log pace, shrunk towards the global
// mean by odPrior journeys' worth of weight. Per-cell speeds can't see a
// journey's shape (a bridge, a highway ramp, one-way detours, the queue at
// a station); journeys that started and ended close to the query's ends
// did drive it. Points are kept in a local planar frame (metres from the
// first journey) and searched by brute force, which suits the few
// thousand journeys of an evaluation or a day in one city; a bigger
// store would bucket them by cell first.
type odIndex struct {
	lat0, lng0, kx, ky float64
	j                  []odJourney
	mean               float64
}

type odJourney struct {
	ax, ay, bx, by float32
	y              float32 // log pace: log1p(seconds) − log(metres + odPadM)
}

// odPadM keeps log pace finite for journeys that end where they start.
const odPadM = 100

// odPrior is the weight (in journeys at zero distance) of the global mean.
const odPrior = 2

// odSigmasM are the kernel widths, each giving a feature pair.
var odSigmasM = [...]float64{250, 1000}

// odJourneyIn is a journey given to newODIndex.
type odJourneyIn struct {
	A, B    geo.Point
	Seconds float64
}

// maxODJourneys bounds an odIndex: its features scan every journey, for
// each training query and each live estimate. Past it every k-th journey
// is kept (in the order given: training trips by departure). The team's
// samples stay under it (Porto ~13k, NYC green 3.5k).
const maxODJourneys = 20_000

func newODIndex(js []odJourneyIn) *odIndex {
	ix := &odIndex{}
	if len(js) == 0 {
		return ix
	}
	if len(js) > maxODJourneys {
		step := (len(js) + maxODJourneys - 1) / maxODJourneys
		kept := make([]odJourneyIn, 0, len(js)/step+1)
		for i := 0; i < len(js); i += step {
			kept = append(kept, js[i])
		}
		js = kept
	}
	ix.lat0, ix.lng0 = js[0].A.Lat, js[0].A.Lng
	ix.ky = math.Pi / 180 * geo.EarthRadiusM
	ix.kx = ix.ky * math.Cos(ix.lat0*math.Pi/180)
	sum := 0.0
	ix.j = make([]odJourney, 0, len(js))
	for _, j := range js {
		ax, ay := ix.xy(j.A)
		bx, by := ix.xy(j.B)
		y := odPace(j.Seconds, geo.Distance(j.A, j.B))
		ix.j = append(ix.j, odJourney{float32(ax), float32(ay), float32(bx), float32(by), float32(y)})
		sum += y
	}
	ix.mean = sum / float64(len(js))
	return ix
}

func odPace(seconds, metres float64) float64 {
	return math.Log1p(seconds) - math.Log(metres+odPadM)
}

func (ix *odIndex) xy(p geo.Point) (float64, float64) {
	return (p.Lng - ix.lng0) * ix.kx, (p.Lat - ix.lat0) * ix.ky
}

// features appends, for each kernel width, the log(1+seconds) the shrunk
// mean log pace predicts for a→b, and log(1 + total kernel weight) (how
// much evidence there was).
func (ix *odIndex) features(dst []float64, a, b geo.Point) []float64 {
	lm := math.Log(geo.Distance(a, b) + odPadM)
	ax, ay := ix.xy(a)
	bx, by := ix.xy(b)
	var sw, swy [len(odSigmasM)]float64
	var inv [len(odSigmasM)]float64
	for k, s := range odSigmasM {
		inv[k] = -1 / (2 * s * s)
	}
	cut := 9 * odSigmasM[len(odSigmasM)-1] * odSigmasM[len(odSigmasM)-1] * 2 // beyond 3σ on both ends
	for _, j := range ix.j {
		dx, dy := float64(j.ax)-ax, float64(j.ay)-ay
		ex, ey := float64(j.bx)-bx, float64(j.by)-by
		d2 := dx*dx + dy*dy + ex*ex + ey*ey
		if d2 > cut {
			continue
		}
		for k := range odSigmasM {
			w := math.Exp(d2 * inv[k])
			sw[k] += w
			swy[k] += w * float64(j.y)
		}
	}
	for k := range odSigmasM {
		dst = append(dst, lm+(swy[k]+odPrior*ix.mean)/(sw[k]+odPrior), math.Log1p(sw[k]))
	}
	return dst
}
