package gbm

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
)

// maxBins is the number of quantile bins per feature.
const maxBins = 64

// Params are a Booster's hyperparameters.
type Params struct {
	Trees     int     // number of trees
	Depth     int     // depth of each tree
	Rate      float64 // shrinkage applied to each tree
	MinLeaf   int     // fewest rows in a leaf
	Lambda    float64 // L2 penalty on leaf values (in rows)
	Subsample float64 // share of rows each tree sees
	Seed      uint64
}

// Node is a tree node: a split (x[Feature] ≤ Thresh goes Left) or, with
// Feature < 0, a leaf holding Value.
type Node struct {
	Feature     int32
	Left, Right int32
	Thresh      float64
	Value       float64
}

type Tree []Node

func (t Tree) eval(x []float64) float64 {
	i := int32(0)
	for {
		n := &t[i]
		if n.Feature < 0 {
			return n.Value
		}
		if x[n.Feature] <= n.Thresh {
			i = n.Left
		} else {
			i = n.Right
		}
	}
}

// Booster is a fitted ensemble: Base plus the sum of its trees.
type Booster struct {
	Base  float64
	Trees []Tree
}

func (b *Booster) Predict(x []float64) float64 {
	s := b.Base
	for _, t := range b.Trees {
		s += t.eval(x)
	}
	return s
}

// binned is a feature matrix bucketed for training: cuts[f] are the upper
// bounds of feature f's bins (x ≤ cuts[f][j] ⇔ bin ≤ j) and bins[f][i] the
// bin of row i.
type binned struct {
	cuts [][]float64
	bins [][]uint8
}

// binRows buckets the rows of X (all the same width) by quantiles.
func binRows(X [][]float64) *binned {
	if len(X) == 0 {
		return &binned{}
	}
	nf := len(X[0])
	b := &binned{cuts: make([][]float64, nf), bins: make([][]uint8, nf)}
	col := make([]float64, len(X))
	for f := 0; f < nf; f++ {
		for i, x := range X {
			col[i] = x[f]
		}
		s := slices.Clone(col)
		slices.Sort(s)
		s = slices.Compact(s)
		var cuts []float64
		if len(s) <= maxBins {
			for i := 0; i+1 < len(s); i++ {
				cuts = append(cuts, (s[i]+s[i+1])/2)
			}
		} else {
			// Quantiles of the distinct values weighted by rows.
			all := slices.Clone(col)
			slices.Sort(all)
			for q := 1; q < maxBins; q++ {
				i := q * len(all) / maxBins
				if i <= 0 || i >= len(all) || all[i] == all[i-1] {
					continue
				}
				c := (all[i] + all[i-1]) / 2
				if len(cuts) == 0 || c > cuts[len(cuts)-1] {
					cuts = append(cuts, c)
				}
			}
		}
		b.cuts[f] = cuts
		bf := make([]uint8, len(X))
		for i, v := range col {
			bf[i] = uint8(sort.SearchFloat64s(cuts, v))
		}
		b.bins[f] = bf
	}
	return b
}

// boostRun fits a Booster one tree at a time (see step), so that
// cross-validation can grow every fold together and stop them all once the
// mean validation error stops improving.
type boostRun struct {
	g     grower
	y     []float64
	rows  []int32 // training rows
	val   []int32 // validation rows (may be empty)
	pred  []float64
	sub   []int32
	inSub []bool
	rng   *rand.Rand
	bst   *Booster
}

// newBoostRun starts fitting y on rows (nil: all) of b, tracking the error
// on val.
func newBoostRun(b *binned, y []float64, rows, val []int32, p Params) *boostRun {
	if rows == nil {
		rows = make([]int32, len(y))
		for i := range rows {
			rows[i] = int32(i)
		}
	}
	base := 0.0
	for _, i := range rows {
		base += y[i]
	}
	if len(rows) > 0 {
		base /= float64(len(rows))
	}
	r := &boostRun{y: y, rows: rows, val: val, pred: make([]float64, len(y)), inSub: make([]bool, len(y)),
		sub: make([]int32, 0, len(rows)), rng: rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15)),
		bst: &Booster{Base: base}}
	r.g = grower{b: b, resid: make([]float64, len(y)), p: p, pred: r.pred}
	for i := range r.pred {
		r.pred[i] = base
	}
	return r
}

// step grows one more tree and returns the mean squared error on the
// validation rows afterwards (0 without any).
func (r *boostRun) step() float64 {
	p := r.g.p
	r.sub = r.sub[:0]
	for _, i := range r.rows {
		r.inSub[i] = p.Subsample >= 1 || r.rng.Float64() < p.Subsample
		if r.inSub[i] {
			r.sub = append(r.sub, i)
			r.g.resid[i] = r.y[i] - r.pred[i]
		}
	}
	if len(r.sub) == 0 {
		return r.valErr()
	}
	r.g.tree = r.g.tree[:0]
	var h *hist
	if r.g.splits(len(r.sub), 0) {
		h = r.g.newHist()
		r.g.fill(h, r.sub)
	}
	r.g.grow(r.sub, 0, h) // also adds the leaf values to pred of r.sub
	tree := slices.Clone(r.g.tree)
	r.bst.Trees = append(r.bst.Trees, tree)
	for _, i := range r.rows {
		if !r.inSub[i] {
			r.pred[i] += r.g.evalBinned(tree, i)
		}
	}
	for _, i := range r.val {
		r.pred[i] += r.g.evalBinned(tree, i)
	}
	return r.valErr()
}

func (r *boostRun) valErr() float64 {
	if len(r.val) == 0 {
		return 0
	}
	se := 0.0
	for _, i := range r.val {
		d := r.pred[i] - r.y[i]
		se += d * d
	}
	return se / float64(len(r.val))
}

// fitBoost fits p.Trees trees to y on rows (nil: all).
func fitBoost(b *binned, y []float64, rows []int32, p Params) *Booster {
	r := newBoostRun(b, y, rows, nil, p)
	for t := 0; t < p.Trees; t++ {
		r.step()
	}
	return r.bst
}

type grower struct {
	b     *binned
	resid []float64
	pred  []float64
	p     Params
	tree  Tree
	free  []*hist // reusable histograms
}

func (g *grower) evalBinned(t Tree, i int32) float64 {
	k := int32(0)
	for {
		n := &t[k]
		if n.Feature < 0 {
			return n.Value
		}
		if float64(g.b.bins[n.Feature][i]) <= n.Thresh {
			k = n.Left
		} else {
			k = n.Right
		}
	}
}

// hist is a per-feature histogram of residual sums and row counts,
// feature f's bin k at f*maxBins+k.
type hist struct {
	s []float64
	n []int32
}

func (g *grower) newHist() *hist {
	if k := len(g.free); k > 0 {
		h := g.free[k-1]
		g.free = g.free[:k-1]
		clear(h.s)
		clear(h.n)
		return h
	}
	nf := len(g.b.bins)
	return &hist{s: make([]float64, nf*maxBins), n: make([]int32, nf*maxBins)}
}

// fill adds rows to h.
func (g *grower) fill(h *hist, rows []int32) {
	for f, bins := range g.b.bins {
		if len(g.b.cuts[f]) == 0 {
			continue
		}
		hs, hn := h.s[f*maxBins:(f+1)*maxBins], h.n[f*maxBins:(f+1)*maxBins]
		for _, i := range rows {
			k := bins[i]
			hs[k] += g.resid[i]
			hn[k]++
		}
	}
}

// splits reports whether a node of n rows at depth will be split.
func (g *grower) splits(n, depth int) bool {
	return depth < g.p.Depth && n >= 2*g.p.MinLeaf
}

// grow appends the subtree for rows and returns its index; h is the
// histogram of rows when the node may split (nil otherwise), and is
// consumed. A child's histogram is the parent's minus its sibling's, so
// only the smaller child is scanned. While growing, split nodes hold the
// bin index in Thresh (binned.thresholds converts them).
func (g *grower) grow(rows []int32, depth int, h *hist) int32 {
	idx := int32(len(g.tree))
	g.tree = append(g.tree, Node{Feature: -1})
	sum := 0.0
	for _, i := range rows {
		sum += g.resid[i]
	}
	n := float64(len(rows))
	leaf := func() int32 {
		v := g.p.Rate * sum / (n + g.p.Lambda)
		g.tree[idx].Value = v
		for _, i := range rows {
			g.pred[i] += v
		}
		if h != nil {
			g.free = append(g.free, h)
		}
		return idx
	}
	if h == nil || !g.splits(len(rows), depth) {
		return leaf()
	}
	parent := sum * sum / (n + g.p.Lambda)
	bestGain, bestF, bestBin := 1e-12, -1, 0
	for f := range g.b.bins {
		nb := len(g.b.cuts[f]) + 1
		if nb < 2 {
			continue
		}
		hs, hn := h.s[f*maxBins:f*maxBins+nb], h.n[f*maxBins:f*maxBins+nb]
		var sl float64
		var nl int
		for j := 0; j < nb-1; j++ {
			sl += hs[j]
			nl += int(hn[j])
			nr := len(rows) - nl
			if nl < g.p.MinLeaf {
				continue
			}
			if nr < g.p.MinLeaf {
				break
			}
			sr := sum - sl
			gain := sl*sl/(float64(nl)+g.p.Lambda) + sr*sr/(float64(nr)+g.p.Lambda) - parent
			if gain > bestGain {
				bestGain, bestF, bestBin = gain, f, j
			}
		}
	}
	if bestF < 0 {
		return leaf()
	}
	// Partition rows in place: bin ≤ bestBin first.
	bins := g.b.bins[bestF]
	lo, hi := 0, len(rows)-1
	for lo <= hi {
		if int(bins[rows[lo]]) <= bestBin {
			lo++
		} else {
			rows[lo], rows[hi] = rows[hi], rows[lo]
			hi--
		}
	}
	left, right := rows[:lo], rows[lo:]
	var hl, hr *hist
	ls, rs := g.splits(len(left), depth+1), g.splits(len(right), depth+1)
	switch {
	case ls && rs:
		// Scan the smaller child; the parent's histogram minus it is the
		// bigger child's.
		hsm := g.newHist()
		if len(left) <= len(right) {
			g.fill(hsm, left)
			hl, hr = hsm, h
		} else {
			g.fill(hsm, right)
			hl, hr = h, hsm
		}
		for k := range h.s {
			h.s[k] -= hsm.s[k]
			h.n[k] -= hsm.n[k]
		}
	case ls:
		hl = h
		clear(h.s)
		clear(h.n)
		g.fill(hl, left)
	case rs:
		hr = h
		clear(h.s)
		clear(h.n)
		g.fill(hr, right)
	default:
		g.free = append(g.free, h)
	}
	l := g.grow(left, depth+1, hl)
	r := g.grow(right, depth+1, hr)
	g.tree[idx] = Node{Feature: int32(bestF), Left: l, Right: r, Thresh: float64(bestBin)}
	return idx
}

// thresholds converts a tree grown on bins into one on raw feature values.
func (b *binned) thresholds(t Tree) Tree {
	out := slices.Clone(t)
	for i := range out {
		if f := out[i].Feature; f >= 0 {
			out[i].Thresh = b.cuts[f][int(out[i].Thresh)]
		}
	}
	return out
}

// finish converts every tree of a Booster grown on b to raw thresholds.
func (b *binned) finish(bst *Booster) *Booster {
	out := &Booster{Base: bst.Base, Trees: make([]Tree, len(bst.Trees))}
	for i, t := range bst.Trees {
		out.Trees[i] = b.thresholds(t)
	}
	return out
}

// cvPatience: cross-validation stops adding trees after this many without
// a lower mean validation error.
const cvPatience = 40

// CV picks, among the depths and leaf sizes given, the depth, leaf
// size and number of trees with
// the lowest mean validation error over the folds (rows with fold[i] = k
// are fold k's validation set), then fits on every row with them. It
// returns the fitted Booster and the chosen parameters with their CV error.
func CV(X [][]float64, y []float64, fold []int, folds int, depths, leaves []int, p Params) (*Booster, Params, float64) {
	bst, best, err, _ := CVOutOfFold(X, y, fold, folds, depths, leaves, p)
	return bst, best, err
}

// CVOutOfFold is CV that also returns each row's out-of-fold prediction
// with the chosen parameters (by the booster fitted without the row's
// fold; the base value for a row of no fold in range).
func CVOutOfFold(X [][]float64, y []float64, fold []int, folds int, depths, leaves []int, p Params) (*Booster, Params, float64, []float64) {
	b := binRows(X)
	oof := make([]float64, len(y))
	bestErr, best := math.Inf(1), p
	type combo struct{ depth, leaf int }
	var grid []combo
	for _, d := range depths {
		for _, l := range leaves {
			grid = append(grid, combo{d, l})
		}
	}
	for _, c := range grid {
		q := p
		q.Depth, q.MinLeaf = c.depth, c.leaf
		var runs []*boostRun
		for k := 0; k < folds; k++ {
			var tr, va []int32
			for i, f := range fold {
				if f == k {
					va = append(va, int32(i))
				} else {
					tr = append(tr, int32(i))
				}
			}
			if len(va) > 0 && len(tr) > 0 {
				runs = append(runs, newBoostRun(b, y, tr, va, q))
			}
		}
		if len(runs) == 0 {
			continue
		}
		// Grow all folds together; stop once the mean validation error
		// has not improved for cvPatience trees.
		since := 0
		errs := make([]float64, len(runs))
		for t := 0; t < p.Trees && since < cvPatience; t++ {
			// Folds are independent: grow them in parallel, sum in order.
			var wg sync.WaitGroup
			for i, r := range runs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = r.step()
				}()
			}
			wg.Wait()
			e := 0.0
			for _, x := range errs {
				e += x
			}
			e /= float64(len(runs))
			since++
			if e < bestErr {
				bestErr, best, since = e, q, 0
				best.Trees = t + 1
				for _, r := range runs {
					for _, i := range r.val {
						oof[i] = r.pred[i]
					}
				}
			}
		}
	}
	if math.IsInf(bestErr, 1) {
		best.Trees = 0
	}
	bst := b.finish(fitBoost(b, y, nil, best))
	if best.Trees == 0 {
		for i := range oof {
			oof[i] = bst.Base
		}
	}
	return bst, best, bestErr, oof
}
