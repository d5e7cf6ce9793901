package gbm

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// stepData: y = [x0 > 0.3] + 2·[x1 > 0.7] + noise; x2 is irrelevant.
func stepData(n int, noise float64, seed uint64) ([][]float64, []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	X := make([][]float64, n)
	y := make([]float64, n)
	for i := range X {
		X[i] = []float64{rng.Float64(), rng.Float64(), rng.Float64()}
		if X[i][0] > 0.3 {
			y[i]++
		}
		if X[i][1] > 0.7 {
			y[i] += 2
		}
		y[i] += noise * rng.NormFloat64()
	}
	return X, y
}

func TestBoostRecoversSteps(t *testing.T) {
	X, y := stepData(2000, 0.1, 1)
	b := binRows(X)
	p := Params{Trees: 150, Depth: 2, Rate: 0.1, MinLeaf: 10, Lambda: 1, Subsample: 0.8, Seed: 3}
	bin := fitBoost(b, y, nil, p)
	raw := b.finish(bin)
	// Thresholds on raw values decide exactly as bins did on training rows.
	g := grower{b: b}
	for i, x := range X {
		s := bin.Base
		for _, tr := range bin.Trees {
			s += g.evalBinned(tr, int32(i))
		}
		if d := math.Abs(s - raw.Predict(x)); d > 1e-9 {
			t.Fatalf("row %d: binned %v, raw %v", i, s, raw.Predict(x))
		}
	}
	// And it learned the function, on fresh data.
	Xt, yt := stepData(1000, 0, 2)
	se := 0.0
	for i, x := range Xt {
		d := raw.Predict(x) - yt[i]
		se += d * d
	}
	if rmse := math.Sqrt(se / float64(len(Xt))); rmse > 0.15 {
		t.Fatalf("rmse %.3f on noiseless test data", rmse)
	}
	// Deterministic.
	if again := b.finish(fitBoost(b, y, nil, p)); !reflect.DeepEqual(raw, again) {
		t.Fatal("same data and seed, different Booster")
	}
}

// bruteTree grows a tree by scanning every row for every candidate split,
// without histograms, as a reference for grower.grow.
func bruteTree(b *binned, resid []float64, rows []int32, depth int, p Params) Tree {
	var t Tree
	var grow func(rows []int32, d int) int32
	grow = func(rows []int32, d int) int32 {
		idx := int32(len(t))
		t = append(t, Node{Feature: -1})
		sum := 0.0
		for _, i := range rows {
			sum += resid[i]
		}
		n := float64(len(rows))
		t[idx].Value = p.Rate * sum / (n + p.Lambda)
		if d >= p.Depth || len(rows) < 2*p.MinLeaf {
			return idx
		}
		parent := sum * sum / (n + p.Lambda)
		bestGain, bestF, bestBin := 1e-12, -1, 0
		for f := range b.bins {
			for j := 0; j < len(b.cuts[f]); j++ {
				var sl float64
				nl := 0
				for _, i := range rows {
					if int(b.bins[f][i]) <= j {
						sl += resid[i]
						nl++
					}
				}
				nr := len(rows) - nl
				if nl < p.MinLeaf || nr < p.MinLeaf {
					continue
				}
				sr := sum - sl
				gain := sl*sl/(float64(nl)+p.Lambda) + sr*sr/(float64(nr)+p.Lambda) - parent
				if gain > bestGain {
					bestGain, bestF, bestBin = gain, f, j
				}
			}
		}
		if bestF < 0 {
			return idx
		}
		var l, r []int32
		for _, i := range rows {
			if int(b.bins[bestF][i]) <= bestBin {
				l = append(l, i)
			} else {
				r = append(r, i)
			}
		}
		li := grow(l, d+1)
		ri := grow(r, d+1)
		t[idx] = Node{Feature: int32(bestF), Left: li, Right: ri, Thresh: float64(bestBin)}
		return idx
	}
	grow(rows, depth)
	return t
}

func TestGrowMatchesBruteForce(t *testing.T) {
	// Integer targets keep every sum exact, so histogram subtraction must
	// pick exactly the brute-force splits.
	rng := rand.New(rand.NewPCG(5, 5))
	X := make([][]float64, 600)
	y := make([]float64, len(X))
	for i := range X {
		X[i] = []float64{float64(rng.IntN(40)), float64(rng.IntN(7)), float64(rng.IntN(100))}
		y[i] = float64(rng.IntN(5))
		if X[i][0] > 20 {
			y[i] += 6
		}
		if X[i][1] == 3 {
			y[i] -= 4
		}
	}
	b := binRows(X)
	for _, depth := range []int{1, 2, 4} {
		p := Params{Trees: 1, Depth: depth, Rate: 1, MinLeaf: 15, Lambda: 0, Subsample: 1}
		rows := make([]int32, len(y))
		for i := range rows {
			rows[i] = int32(i)
		}
		want := bruteTree(b, y, append([]int32(nil), rows...), 0, p)
		g := grower{b: b, resid: y, p: p, pred: make([]float64, len(y))}
		h := g.newHist()
		g.fill(h, rows)
		g.grow(rows, 0, h)
		// Node order is the same depth-first order in both.
		if len(g.tree) != len(want) {
			t.Fatalf("depth %d: %d nodes, brute force %d", depth, len(g.tree), len(want))
		}
		for i := range want {
			a, w := g.tree[i], want[i]
			if a.Feature != w.Feature || a.Left != w.Left || a.Right != w.Right || a.Thresh != w.Thresh ||
				(a.Feature < 0 && math.Abs(a.Value-w.Value) > 1e-9) {
				t.Fatalf("depth %d node %d: %+v, brute force %+v", depth, i, a, w)
			}
		}
	}
}

func TestCVBoostStopsOnNoise(t *testing.T) {
	// Targets unrelated to the features: cross-validation must keep the
	// ensemble tiny (more trees only fit noise).
	rng := rand.New(rand.NewPCG(9, 9))
	X := make([][]float64, 1000)
	y := make([]float64, len(X))
	fold := make([]int, len(X))
	for i := range X {
		X[i] = []float64{rng.Float64(), rng.Float64()}
		y[i] = rng.NormFloat64()
		fold[i] = i % 5
	}
	p := Params{Trees: 200, Rate: 0.1, Lambda: 1, Subsample: 0.8, Seed: 1}
	_, best, _ := CV(X, y, fold, 5, []int{3}, []int{20}, p)
	if best.Trees > 15 {
		t.Fatalf("cross-validation kept %d trees on pure noise", best.Trees)
	}
	// The same procedure keeps many trees when there is signal.
	Xs, ys := stepData(1000, 0.3, 4)
	_, best, _ = CV(Xs, ys, fold, 5, []int{3}, []int{20}, p)
	if best.Trees < 30 {
		t.Fatalf("cross-validation kept only %d trees on a learnable target", best.Trees)
	}
}

// TestCVOutOfFoldMatchesCVError: the out-of-fold predictions are those of
// the chosen number of trees, each fold's from the run that never saw it:
// their per-fold mean squared errors average to the CV error reported, and
// they are worse in-sample than the final booster's.
func TestCVOutOfFoldMatchesCVError(t *testing.T) {
	X, y := stepData(1000, 0.3, 5)
	fold := make([]int, len(X))
	for i := range fold {
		fold[i] = (i * 7) % 5
	}
	p := Params{Trees: 120, Rate: 0.1, Lambda: 1, Subsample: 0.8, Seed: 1}
	b, best, cvErr, oof := CVOutOfFold(X, y, fold, 5, []int{3}, []int{20}, p)
	if best.Trees == 0 || len(oof) != len(y) {
		t.Fatalf("%d trees, %d out-of-fold predictions", best.Trees, len(oof))
	}
	var se, n [5]float64
	inSample := 0.0
	for i := range y {
		d := oof[i] - y[i]
		se[fold[i]] += d * d
		n[fold[i]]++
		e := b.Predict(X[i]) - y[i]
		inSample += e * e
	}
	mean := 0.0
	for k := range se {
		mean += se[k] / n[k] / 5
	}
	if math.Abs(mean-cvErr) > 1e-9 {
		t.Fatalf("out-of-fold MSE %.9f, CV error %.9f", mean, cvErr)
	}
	if inSample/float64(len(y)) >= mean {
		t.Fatalf("in-sample MSE %.4f not below out-of-fold %.4f", inSample/float64(len(y)), mean)
	}
}
