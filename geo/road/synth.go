package road

import (
	"math/rand/v2"

	"github.com/hextrack/hextrack/geo"
)

// Synthetic city layout: a square grid of streets, every arterialEvery-th
// line an arterial, the rest local streets of which some are one-way.
const (
	synthBlocks       = 30  // blocks per side
	synthBlockM       = 150 // block size in meters
	synthArterial     = 5   // every 5th street is an arterial
	synthOneWayShare  = 0.3 // share of local streets that are one-way
	synthDropSegShare = 0.06
)

// SyntheticCity builds a deterministic road network for runs without a map:
// a 4.5 km square around center, a jittered street grid with two-way
// arterials (50 km/h) every 750 m, local streets (30 km/h) of which about a
// third are one-way in alternating directions, and a few missing segments so
// routes aren't trivially straight. The same seed always yields the same
// graph, and the result is strongly connected.
func SyntheticCity(seed int64, center geo.Point) *Graph {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x68657874726b))
	n := synthBlocks + 1
	half := float64(synthBlocks*synthBlockM) / 2
	var b builder
	ids := make([][]int32, n)
	for i := 0; i < n; i++ {
		ids[i] = make([]int32, n)
		for j := 0; j < n; j++ {
			// Jitter intersections (not on arterials, which stay straight).
			dx := float64(j)*synthBlockM - half
			dy := float64(i)*synthBlockM - half
			if i%synthArterial != 0 && j%synthArterial != 0 {
				dx += (rng.Float64() - 0.5) * 40
				dy += (rng.Float64() - 0.5) * 40
			}
			p := geo.Offset(geo.Offset(center, 0, dy), 90, dx)
			ids[i][j] = b.addNode(p)
		}
	}
	local, arterial := ClassResidential, ClassSecondary
	street := func(nodes []int32, isArterial bool, line int) {
		if isArterial {
			b.addWay(nodes, arterial, 50/3.6, true, true)
			return
		}
		// Cut the street into runs, dropping a few segments.
		var run []int32
		oneway := rng.Float64() < synthOneWayShare
		fwd := line%2 == 0
		flush := func() {
			if len(run) >= 2 {
				if oneway {
					b.addWay(run, local, 30/3.6, fwd, !fwd)
				} else {
					b.addWay(run, local, 30/3.6, true, true)
				}
			}
			run = run[:0]
		}
		for k, id := range nodes {
			run = append(run, id)
			if k > 0 && k < len(nodes)-1 && rng.Float64() < synthDropSegShare {
				flush()
			}
		}
		flush()
	}
	for i := 0; i < n; i++ { // east-west streets
		street(append([]int32(nil), ids[i]...), i%synthArterial == 0, i)
	}
	for j := 0; j < n; j++ { // north-south streets
		col := make([]int32, n)
		for i := range col {
			col[i] = ids[i][j]
		}
		street(col, j%synthArterial == 0, j)
	}
	return b.build(true)
}
