package pod

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/hextrack/hextrack/blob"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// Store keeps the proofs' records (podredis.Store).
type Store interface {
	// Record stores r as its (trip, stop, kind)'s proof and returns the
	// record it replaced (ok false: none), atomically.
	Record(ctx context.Context, r Record) (old Record, ok bool, err error)
	// Get is the record of (trip, stop, kind), or ErrNotFound.
	Get(ctx context.Context, tripID, stopID, kind string) (Record, error)
	// List is the stop's records, photo first.
	List(ctx context.Context, tripID, stopID string) ([]Record, error)
}

// Publisher publishes the stop.proof event (feedredis.Publisher).
type Publisher interface {
	Publish(ctx context.Context, p feed.Publication) (string, error)
}

// Service records proofs of delivery: the file in a blob.Store, its
// record in the Store, a stop.proof event on the trip's feed. It checks
// what the upload is (ids, kind, geotag, content type, size); who may
// upload or read is the caller's check (api/pod). Safe for concurrent use.
type Service struct {
	blobs blob.Store
	store Store
	pub   Publisher
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
}

// NewService returns the service over blobs, store and pub, logging the
// failures it does not return to log (nil: slog.Default()).
func NewService(blobs blob.Store, store Store, pub Publisher, cfg Config, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{blobs: blobs, store: store, pub: pub, cfg: cfg, log: log, now: time.Now}
}

// Config is the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Put validates in and records r's bytes as the stop's proof of in.Kind:
// Stage, then Commit with in.Geotag.
func (s *Service) Put(ctx context.Context, in Upload, r io.Reader) (Proof, error) {
	st, err := s.Stage(ctx, in, r)
	if err != nil {
		return Proof{}, err
	}
	return st.Commit(ctx, in.Geotag)
}

// Staged is a file written to the blob store but not yet recorded: Commit
// records it, Discard deletes it. One of the two must be called, from the
// goroutine that staged it (a Staged is not for concurrent use).
type Staged struct {
	s    *Service
	in   Upload
	key  string
	ct   string
	size int64
	sum  string
	done bool
}

// Stage checks in's ids and kind and streams r to the blob store under a
// fresh key: its type sniffed from its first bytes (ErrUnsupportedType,
// before anything is written), its size counted (ErrTooLarge past the
// kind's limit: the blob Put fails and keeps nothing) and its bytes hashed.
// in.Geotag is not looked at: Commit takes it, so form fields may follow
// the file.
func (s *Service) Stage(ctx context.Context, in Upload, r io.Reader) (*Staged, error) {
	if err := CheckIDs(in.TripID, in.StopID, in.Kind); err != nil {
		return nil, err
	}
	if in.DriverID == "" {
		return nil, fmt.Errorf("%w: no uploader", ErrInvalid)
	}
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(r, head)
	switch {
	case n == 0 && (err == nil || errors.Is(err, io.EOF)):
		return nil, fmt.Errorf("%w: the file is empty", ErrInvalid)
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("pod: read upload: %w", err)
	}
	head = head[:n]
	limit := s.cfg.Max(in.Kind)
	if int64(n) > limit {
		return nil, tooLarge(in.Kind, limit)
	}
	ct, err := Sniff(in.Kind, head)
	if err != nil {
		return nil, err
	}
	key := blobKey(in)
	body := &counter{r: io.MultiReader(bytes.NewReader(head), r), max: limit, h: sha256.New()}
	if err := s.blobs.Put(ctx, key, body, -1, ct); err != nil {
		if errors.Is(err, errOverLimit) {
			return nil, tooLarge(in.Kind, limit)
		}
		return nil, fmt.Errorf("pod: store the file: %w", err)
	}
	return &Staged{s: s, in: in, key: key, ct: ct, size: body.n, sum: hex.EncodeToString(body.h.Sum(nil))}, nil
}

// Discard deletes the staged file (after Commit: nothing).
func (st *Staged) Discard() {
	if !st.done {
		st.done = true
		st.s.deleteBlob(st.key)
	}
}

// Commit checks g (photos only, in range; nil: none) and records the
// staged file as the stop's proof, replacing any earlier one, whose file
// is then deleted; on an error before the record the staged file is
// deleted. The stop.proof event follows the record: if it fails, the
// proof stands and the error says so.
func (st *Staged) Commit(ctx context.Context, g *Geotag) (Proof, error) {
	if st.done {
		return Proof{}, errors.New("pod: a staged file committed or discarded twice")
	}
	if err := checkGeotag(st.in.Kind, g); err != nil {
		st.Discard()
		return Proof{}, err
	}
	s, in := st.s, st.in
	p := Proof{TripID: in.TripID, StopID: in.StopID, Kind: in.Kind, ContentType: st.ct, Size: st.size,
		SHA256: st.sum, UploadedBy: in.DriverID, UploadedAt: s.now().UTC(), Geotag: g}
	old, replaced, err := s.store.Record(ctx, Record{Proof: p, Key: st.key})
	if err != nil {
		st.Discard() // not recorded: the new file is nobody's
		return Proof{}, err
	}
	st.done = true
	if replaced && old.Key != st.key {
		s.deleteBlob(old.Key)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return Proof{}, fmt.Errorf("pod: encode event: %w", err)
	}
	// Keyed by the file, so a retried publish is one event.
	if _, err := s.pub.Publish(ctx, feed.Publication{Topic: trip.Topic(in.TripID), Type: EventProof, Data: data, Key: "proof:" + st.key}); err != nil {
		return p, fmt.Errorf("pod: recorded, but the %s event was not published: %w", EventProof, err)
	}
	return p, nil
}

// deleteBlob removes a file nobody's record names any longer. It runs
// without the request's context: a client gone must not leave it behind.
// A failure is logged; the file stays as an orphan.
func (s *Service) deleteBlob(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.blobs.Delete(ctx, key); err != nil {
		s.log.Warn("pod: delete a replaced or unrecorded file", "key", key, "err", err)
	}
}

// Has reports whether the stop has a proof of kind (trip.ProofFiles).
func (s *Service) Has(ctx context.Context, tripID, stopID, kind string) (bool, error) {
	if err := CheckIDs(tripID, stopID, kind); err != nil {
		return false, err
	}
	_, err := s.store.Get(ctx, tripID, stopID, kind)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// List is the stop's proofs, photo first (none: empty).
func (s *Service) List(ctx context.Context, tripID, stopID string) ([]Proof, error) {
	if err := CheckIDs(tripID, stopID, KindPhoto); err != nil {
		return nil, err
	}
	rs, err := s.store.List(ctx, tripID, stopID)
	if err != nil {
		return nil, err
	}
	out := make([]Proof, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Proof)
	}
	return out, nil
}

// Open returns the stop's proof of kind and its file (the caller closes
// it); ErrNotFound when there is none, or its file is gone.
func (s *Service) Open(ctx context.Context, tripID, stopID, kind string) (Proof, io.ReadCloser, error) {
	if err := CheckIDs(tripID, stopID, kind); err != nil {
		return Proof{}, nil, err
	}
	r, err := s.store.Get(ctx, tripID, stopID, kind)
	if err != nil {
		return Proof{}, nil, err
	}
	rc, _, err := s.blobs.Get(ctx, r.Key)
	if errors.Is(err, blob.ErrNotFound) {
		return Proof{}, nil, fmt.Errorf("%w: the %s's file is gone", ErrNotFound, kind)
	}
	if err != nil {
		return Proof{}, nil, fmt.Errorf("pod: open the file: %w", err)
	}
	return r.Proof, rc, nil
}

// CheckIDs returns ErrInvalid unless tripID is a trip id, stopID a stop id
// (ValidStopID) and kind a kind of proof.
func CheckIDs(tripID, stopID, kind string) error {
	switch {
	case !trip.ValidID(tripID):
		return fmt.Errorf("%w: trip id %q", ErrInvalid, clip(tripID))
	case !ValidStopID(stopID):
		return fmt.Errorf("%w: stop id %q", ErrInvalid, clip(stopID))
	case !ValidKind(kind):
		return fmt.Errorf("%w: kind %q: must be %s or %s", ErrInvalid, clip(kind), KindPhoto, KindSignature)
	}
	return nil
}

func checkGeotag(kind string, g *Geotag) error {
	if g == nil {
		return nil
	}
	if kind != KindPhoto {
		return fmt.Errorf("%w: lat and lng are for photos only", ErrInvalid)
	}
	if math.IsNaN(g.Lat) || math.IsNaN(g.Lng) || g.Lat < -90 || g.Lat > 90 || g.Lng < -180 || g.Lng > 180 {
		return fmt.Errorf("%w: geotag out of range: lat must be within [-90, 90], lng within [-180, 180]", ErrInvalid)
	}
	return nil
}

func tooLarge(kind string, limit int64) error {
	return fmt.Errorf("%w: a %s may be at most %d bytes", ErrTooLarge, kind, limit)
}

// blobKey is a fresh key for in's file: a new upload never overwrites the
// file a record still names.
func blobKey(in Upload) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "t-" + in.TripID + "/s-" + in.StopID + "/" + in.Kind + "-" + hex.EncodeToString(b[:])
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// errOverLimit is counter's error past its limit.
var errOverLimit = errors.New("over the size limit")

// counter counts and hashes what it reads, failing once past max bytes,
// so an oversize file fails its blob Put (which then keeps nothing).
type counter struct {
	r   io.Reader
	n   int64
	max int64
	h   hash.Hash
}

func (c *counter) Read(p []byte) (int, error) {
	// Read at most one byte past the limit: enough to know it is over.
	if room := c.max + 1 - c.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return 0, errOverLimit
	}
	c.h.Write(p[:n])
	return n, err
}
