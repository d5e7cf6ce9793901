package eta

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/hextrack/hextrack/eta/edgespeed"
	"github.com/hextrack/hextrack/eta/internal/gbm"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
)

// State is an estimator's learned state (speeds, detour factor,
// correction, edge speeds) in exported fields and without maps, so that
// eta/etamodel encodes it deterministically (the same state, the same
// bytes). Edges (nil: none, as in every model before them) are the edge
// speeds learned from matched trails on the map the model was trained
// with; they apply only over that map (edgespeed.Table.Fits).
type State struct {
	Speed      speedState
	Detour     ewma
	Correction *correctionState // nil: none
	Edges      *edgespeed.State
}

type speedState struct {
	Config SpeedConfig
	Stats  []CellStat
	Priors []cellPrior
}

type cellPrior struct {
	Cell    geo.Cell
	SpeedMS float64
}

type correctionState struct {
	GridDeg float64
	OD      *odState // nil: no journey features
	Booster gbm.Booster
	Params  gbm.Params
	CVRMSE  float64
	Shift   [2]float64 // Correction.shift; zeros in files from before it
}

// odState is an odIndex by columns.
type odState struct {
	Lat0, Lng0, KX, KY, Mean float64
	AX, AY, BX, BY, Y        []float32
}

// State is the estimator's learned state.
func (e *Estimator) State() State {
	m := e.model
	s := State{Speed: speedState{Config: m.Config(), Stats: m.Snapshot()}}
	m.mu.RLock()
	for c, v := range m.priors {
		s.Speed.Priors = append(s.Speed.Priors, cellPrior{c, v})
	}
	m.mu.RUnlock()
	slices.SortFunc(s.Speed.Priors, func(a, b cellPrior) int { return cmp.Compare(a.Cell, b.Cell) })
	if e.router != nil {
		if t := e.router.EdgeSpeeds(); t != nil {
			es := t.State()
			s.Edges = &es
		}
	}
	e.mu.RLock()
	c := e.corr
	s.Detour = e.detour
	e.mu.RUnlock()
	if c == nil {
		return s
	}
	s.Correction = &correctionState{GridDeg: c.fs.gridDeg, Booster: *c.b, Params: c.params, CVRMSE: c.cvRMSE, Shift: c.shift}
	if od := c.fs.od; od != nil {
		o := &odState{Lat0: od.lat0, Lng0: od.lng0, KX: od.kx, KY: od.ky, Mean: od.mean}
		for _, j := range od.j {
			o.AX, o.AY, o.BX, o.BY, o.Y = append(o.AX, j.ax), append(o.AY, j.ay), append(o.BX, j.bx), append(o.BY, j.by), append(o.Y, j.y)
		}
		s.Correction.OD = o
	}
	return s
}

// Estimator builds an estimator holding the state (a fresh speed model, the
// detour factor, the correction installed, the edge speeds when g is the
// map they were learned on), routed over g (nil: the line estimate).
// Errors: a malformed state (from a corrupt file).
func (s State) Estimator(g *road.Graph) (*Estimator, error) {
	var edges *edgespeed.Table
	if s.Edges != nil {
		t, err := edgespeed.FromState(*s.Edges)
		if err != nil {
			return nil, err
		}
		edges = t
	}
	var fs featureSpace
	var b gbm.Booster
	if c := s.Correction; c != nil {
		for _, t := range c.Booster.Trees {
			if !validTree(t) {
				return nil, errors.New("eta: malformed tree")
			}
		}
		fs, b = featureSpace{gridDeg: c.GridDeg}, c.Booster
		if o := c.OD; o != nil {
			n := len(o.AX)
			if len(o.AY) != n || len(o.BX) != n || len(o.BY) != n || len(o.Y) != n {
				return nil, errors.New("eta: journey columns of different lengths")
			}
			fs.od = &odIndex{lat0: o.Lat0, lng0: o.Lng0, kx: o.KX, ky: o.KY, mean: o.Mean, j: make([]odJourney, n)}
			for i := range fs.od.j {
				fs.od.j[i] = odJourney{o.AX[i], o.AY[i], o.BX[i], o.BY[i], o.Y[i]}
			}
		}
	}
	sm := NewSpeedModel(s.Speed.Config)
	sm.merge(s.Speed.Stats)
	for _, p := range s.Speed.Priors {
		sm.SetPrior(p.Cell, p.SpeedMS)
	}
	var r *Router
	if g != nil {
		r = NewRouter(g, sm)
		r.Refresh()
		if edges != nil {
			r.SetEdgeSpeeds(edges) // refused on another map: cell speeds only
		}
	}
	e := NewEstimator(sm, r)
	e.detour = s.Detour
	if c := s.Correction; c != nil {
		e.corr = &Correction{fs: fs, b: &b, params: c.Params, cvRMSE: c.CVRMSE, shift: c.Shift}
	}
	return e, nil
}

// validTree: every child index points forward inside the tree (so eval
// ends); leaves are where Feature < 0.
func validTree(t gbm.Tree) bool {
	for i, n := range t {
		if n.Feature >= 0 && (n.Left <= int32(i) || n.Right <= int32(i) || int(n.Left) >= len(t) || int(n.Right) >= len(t)) {
			return false
		}
	}
	return len(t) > 0
}

// learnOrUse is an evaluation's Learned: learned from train, or, with
// opt.Estimator, that estimator with only the baselines fitted on train.
func learnOrUse(ctx context.Context, train []Trip, opt EvalOptions) (*Learned, error) {
	if opt.Estimator == nil {
		return Learn(ctx, train, opt.Graph)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	est := opt.Estimator
	l := &Learned{Model: est.model, Router: est.router, Estimator: est}
	if err := l.fitBaselines(train); err != nil {
		return nil, err
	}
	return l, nil
}
