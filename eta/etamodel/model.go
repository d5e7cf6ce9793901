package etamodel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/geo/road"
)

// Format names the model file format New writes. Decode reads it and
// formatV1 (files from before edge speeds, which decode with none); a file
// of another format is refused. /2 added eta.State.Edges: a binary that
// knows only /1 refuses a /2 file rather than serve it without its edge
// speeds.
const Format = "hextrack-eta-model/2"

const formatV1 = "hextrack-eta-model/1"

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
		return Source{}, fmt.Errorf("etamodel: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Source{}, fmt.Errorf("etamodel: %s: %w", path, err)
	}
	return Source{Name: filepath.Base(path), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Info is a model's provenance: when and from what it was trained,
// and how (the split of eta-eval it was trained for, the time zone of its
// time-of-day features, the road map of its raw estimates).
type Info struct {
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

// Model is a trained ETA model as a file: an estimator's learned state and
// its provenance. Its fingerprint is the short sha256 of the encoded bytes,
// so the model eta-eval scores and the model the server serves can be
// told apart by name and proven the same bytes.
type Model struct {
	Info Info

	raw   []byte
	state eta.State
}

// wire is the encoded model (encoding/gob).
type wire struct {
	Format string
	Info   Info
	State  eta.State
}

// New encodes est's learned state with info into a model. A zero
// info.TrainedAt is now; an empty info.Version is made of the training
// time and the data's names.
func New(est *eta.Estimator, info Info) (*Model, error) {
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
	w := wire{Format: Format, Info: info, State: est.State()}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&w); err != nil {
		return nil, fmt.Errorf("etamodel: encode: %w", err)
	}
	return &Model{Info: info, raw: buf.Bytes(), state: w.State}, nil
}

// Train learns a model from training trips (already prepared, see
// eta.Prepare) exactly as an evaluation does (eta.Learn) and encodes it
// with info (TrainTrips is set here).
func Train(ctx context.Context, train []eta.Trip, g *road.Graph, info Info) (*Model, error) {
	l, err := eta.Learn(ctx, train, g)
	if err != nil {
		return nil, err
	}
	info.TrainTrips = len(train)
	return New(l.Estimator, info)
}

// Decode reads a model encoded by New (Model.Bytes, a model file).
func Decode(raw []byte) (*Model, error) {
	var w wire
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&w); err != nil {
		return nil, fmt.Errorf("etamodel: decode: %w", err)
	}
	if w.Format != Format && w.Format != formatV1 {
		return nil, fmt.Errorf("etamodel: format %q, want %q or %q", w.Format, Format, formatV1)
	}
	if _, err := w.State.Estimator(nil); err != nil {
		return nil, fmt.Errorf("etamodel: decode: %w", err)
	}
	return &Model{Info: w.Info, raw: slices.Clone(raw), state: w.State}, nil
}

// ReadFile reads a model file.
func ReadFile(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("etamodel: %w", err)
	}
	m, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return m, nil
}

// WriteFile writes the model to path (through a temporary file renamed
// into place, so a server never reads half a model).
func (m *Model) WriteFile(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, m.raw, 0o644); err != nil { //nolint:gosec // G306: a model is not secret, and the server may run as another user
		return fmt.Errorf("etamodel: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("etamodel: %w", err)
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
func (m *Model) HasCorrection() bool { return m.state.Correction != nil }

// HasEdgeSpeeds reports whether the model carries edge speeds learned
// from matched trails (used only over the map it was trained with).
func (m *Model) HasEdgeSpeeds() bool { return m.state.Edges != nil }

// Estimator builds the model's estimator: a fresh speed model holding the
// learned speeds, the detour factor, the correction installed, routed over
// g (nil: the line estimate). g should be the map the model was trained
// with (Info.Map); the caller checks.
func (m *Model) Estimator(g *road.Graph) (*eta.Estimator, error) {
	e, err := m.state.Estimator(g)
	if err != nil {
		return nil, fmt.Errorf("etamodel: %w", err)
	}
	return e, nil
}
