package eta

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
)

// ModelFormat names the model file format; a file of another format is
// refused by DecodeModel.
const ModelFormat = "hextrack-eta-model/1"

// Source names a file a model was trained from: its base name and the
// sha256 of its bytes (hex).
type Source struct {
	Name   string
	SHA256 string
}

// SourceOf reads the file at path and names it.
func SourceOf(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return Source{}, fmt.Errorf("eta: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Source{}, fmt.Errorf("eta: %s: %w", path, err)
	}
	return Source{Name: filepath.Base(path), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// ModelInfo is a model's provenance: when and from what it was trained,
// and how (the split of eta-eval it was trained for, the time zone of its
// time-of-day features, the road map of its raw estimates).
type ModelInfo struct {
	// Version names the model: its training time and data (NewModel fills
	// it in when empty).
	Version   string
	TrainedAt time.Time
	// Data are the trip files; TrainTrips the trips learned from.
	Data       []Source
	TrainTrips int
	// Seed and TestFraction are eta-eval's split when the model was
	// trained on the training part of one file (TestFraction 0: the
	// training file was given whole).
	Seed         int64
	TestFraction float64
	// TZ is the IANA time zone the trips' times were read in: the hour of
	// day and the speed buckets are local times there.
	TZ string
	// Map is the road map the speeds were routed over (nil: none, the
	// line estimate).
	Map *Source
}

// Model is a trained ETA model as a file: the estimator's speed model and
// detour factor, and its learned correction. Its fingerprint is the short
// sha256 of the encoded bytes, so the model eta-eval scores and the model
// the server serves can be told apart by name and proven the same bytes.
type Model struct {
	Info ModelInfo

	raw  []byte
	wire modelWire
}

// modelWire is the encoded model (encoding/gob). Every field is a slice or
// value, never a map, so the encoding of a model is deterministic.
type modelWire struct {
	Format     string
	Info       ModelInfo
	Speed      speedWire
	Detour     ewma
	Correction *correctionWire // nil: none
}

type speedWire struct {
	Config SpeedConfig
	Stats  []CellStat
	Priors []cellPrior
}

type cellPrior struct {
	Cell    geo.Cell
	SpeedMS float64
}

type correctionWire struct {
	GridDeg float64
	OD      *odWire // nil: no journey features
	Booster booster
	Params  boostParams
	CVRMSE  float64
}

// odWire is an odIndex by columns.
type odWire struct {
	Lat0, Lng0, KX, KY, Mean float64
	AX, AY, BX, BY, Y        []float32
}

// NewModel encodes est (its speeds, detour factor and correction) with
// info into a model. A zero info.TrainedAt is now; an empty info.Version
// is made of the training time and the data's names.
func NewModel(est *Estimator, info ModelInfo) (*Model, error) {
	if info.TrainedAt.IsZero() {
		info.TrainedAt = time.Now()
	}
	info.TrainedAt = info.TrainedAt.UTC().Truncate(time.Second)
	if info.Version == "" {
		names := make([]string, len(info.Data))
		for i, d := range info.Data {
			names[i] = strings.TrimSuffix(d.Name, filepath.Ext(d.Name))
		}
		info.Version = info.TrainedAt.Format("20060102T150405Z")
		if len(names) > 0 {
			info.Version += "-" + strings.Join(names, "+")
		}
	}
	w := modelWire{Format: ModelFormat, Info: info, Speed: speedOf(est.model)}
	est.mu.RLock()
	w.Detour = est.detour
	c := est.corr
	est.mu.RUnlock()
	if c != nil {
		w.Correction = correctionOf(c)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&w); err != nil {
		return nil, fmt.Errorf("eta: encode model: %w", err)
	}
	return &Model{Info: info, raw: buf.Bytes(), wire: w}, nil
}

func speedOf(m *SpeedModel) speedWire {
	w := speedWire{Config: m.Config(), Stats: m.Snapshot()}
	m.mu.RLock()
	for c, v := range m.priors {
		w.Priors = append(w.Priors, cellPrior{c, v})
	}
	m.mu.RUnlock()
	slices.SortFunc(w.Priors, func(a, b cellPrior) int { return cmp.Compare(a.Cell, b.Cell) })
	return w
}

func correctionOf(c *Correction) *correctionWire {
	w := &correctionWire{GridDeg: c.fs.gridDeg, Booster: *c.b, Params: c.params, CVRMSE: c.cvRMSE}
	if od := c.fs.od; od != nil {
		o := &odWire{Lat0: od.lat0, Lng0: od.lng0, KX: od.kx, KY: od.ky, Mean: od.mean}
		for _, j := range od.j {
			o.AX, o.AY = append(o.AX, j.ax), append(o.AY, j.ay)
			o.BX, o.BY = append(o.BX, j.bx), append(o.BY, j.by)
			o.Y = append(o.Y, j.y)
		}
		w.OD = o
	}
	return w
}

// DecodeModel reads a model encoded by NewModel (Model.Bytes, a model
// file).
func DecodeModel(raw []byte) (*Model, error) {
	var w modelWire
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&w); err != nil {
		return nil, fmt.Errorf("eta: decode model: %w", err)
	}
	if w.Format != ModelFormat {
		return nil, fmt.Errorf("eta: model format %q, want %q", w.Format, ModelFormat)
	}
	if c := w.Correction; c != nil {
		if o := c.OD; o != nil {
			n := len(o.AX)
			if len(o.AY) != n || len(o.BX) != n || len(o.BY) != n || len(o.Y) != n {
				return nil, errors.New("eta: decode model: journey columns of different lengths")
			}
		}
		for _, t := range c.Booster.Trees {
			if !validTree(t) {
				return nil, errors.New("eta: decode model: malformed tree")
			}
		}
	}
	return &Model{Info: w.Info, raw: slices.Clone(raw), wire: w}, nil
}

// validTree: every child index points forward inside the tree (so eval
// ends) and leaves are where Feature < 0.
func validTree(t gbTree) bool {
	if len(t) == 0 {
		return false
	}
	for i, n := range t {
		if n.Feature >= 0 && (n.Left <= int32(i) || n.Right <= int32(i) || int(n.Left) >= len(t) || int(n.Right) >= len(t)) {
			return false
		}
	}
	return true
}

// ReadModelFile reads a model file.
func ReadModelFile(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eta: %w", err)
	}
	m, err := DecodeModel(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return m, nil
}

// WriteFile writes the model to path (through a temporary file renamed
// into place, so a server never reads half a model).
func (m *Model) WriteFile(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, m.raw, 0o644); err != nil {
		return fmt.Errorf("eta: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("eta: %w", err)
	}
	return nil
}

// Bytes is the encoded model (do not modify).
func (m *Model) Bytes() []byte { return m.raw }

// Fingerprint is the first 12 hex digits of the sha256 of the encoded
// model (`sha256sum` of its file).
func (m *Model) Fingerprint() string {
	s := sha256.Sum256(m.raw)
	return hex.EncodeToString(s[:6])
}

// HasCorrection reports whether the model carries a learned correction.
func (m *Model) HasCorrection() bool { return m.wire.Correction != nil }

// Estimator builds the model's estimator: a fresh speed model holding the
// learned speeds, the detour factor, the correction installed, routed over
// g (nil: the line estimate). g should be the map the model was trained
// with (Info.Map); the caller checks.
func (m *Model) Estimator(g *road.Graph) *Estimator {
	w := m.wire
	sm := NewSpeedModel(w.Speed.Config)
	sm.merge(w.Speed.Stats)
	for _, p := range w.Speed.Priors {
		sm.SetPrior(p.Cell, p.SpeedMS)
	}
	var r *Router
	if g != nil {
		r = NewRouter(g, sm)
		r.Refresh()
	}
	e := NewEstimator(sm, r)
	e.detour = w.Detour
	if c := w.Correction; c != nil {
		fs := featureSpace{gridDeg: c.GridDeg}
		if o := c.OD; o != nil {
			ix := &odIndex{lat0: o.Lat0, lng0: o.Lng0, kx: o.KX, ky: o.KY, mean: o.Mean, j: make([]odJourney, len(o.AX))}
			for i := range ix.j {
				ix.j[i] = odJourney{o.AX[i], o.AY[i], o.BX[i], o.BY[i], o.Y[i]}
			}
			fs.od = ix
		}
		b := c.Booster
		e.corr = &Correction{fs: fs, b: &b, params: c.Params, cvRMSE: c.CVRMSE}
	}
	return e
}

// Train learns a model from training trips (already prepared, see
// Prepare) exactly as an evaluation does (Learn) and encodes it with info
// (TrainTrips is set here).
func Train(ctx context.Context, train []Trip, g *road.Graph, info ModelInfo) (*Model, error) {
	l, err := Learn(ctx, train, g)
	if err != nil {
		return nil, err
	}
	info.TrainTrips = len(train)
	return NewModel(l.Estimator, info)
}

// learnOrUse is an evaluation's Learned: learned from train, or, with
// opt.Model, that model's estimator over opt.Graph with only the baselines
// fitted on train.
func learnOrUse(ctx context.Context, train []Trip, opt EvalOptions) (*Learned, error) {
	if opt.Model == nil {
		return Learn(ctx, train, opt.Graph)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	est := opt.Model.Estimator(opt.Graph)
	l := &Learned{Model: est.model, Router: est.router, Estimator: est}
	if err := l.fitBaselines(train); err != nil {
		return nil, err
	}
	return l, nil
}
