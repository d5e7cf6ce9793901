package pod

import (
	"errors"
	"time"
)

// The kinds of proof. Their values are trip.ProofPhoto and
// trip.ProofSignature (the stop lifecycle asks ProofFiles.Has with them).
const (
	KindPhoto     = "photo"
	KindSignature = "signature"
)

// EventProof is the durable event published on the trip's feed
// (trip:<id>) when a proof is recorded; its data is the Proof. The archive
// keeps it, so a proof's metadata outlives the trip's Redis keys.
const EventProof = "stop.proof"

// Default size limits (Config).
const (
	DefaultMaxPhoto     = 5 << 20   // 5 MiB
	DefaultMaxSignature = 512 << 10 // 512 KiB
)

// Errors of the service; api maps them to statuses.
var (
	// ErrInvalid: a bad trip or stop id, kind, geotag or form (400).
	ErrInvalid = errors.New("invalid proof upload")
	// ErrTooLarge: the file is over its kind's size limit (413).
	ErrTooLarge = errors.New("upload too large")
	// ErrUnsupportedType: the file's content is not an allowed type for
	// its kind (415).
	ErrUnsupportedType = errors.New("unsupported media type")
	// ErrNotFound: no proof of that kind for the stop (404).
	ErrNotFound = errors.New("proof not found")
)

// Proof is one recorded proof of delivery: what the API lists and the
// stop.proof event carries.
type Proof struct {
	TripID      string    `json:"trip_id"`
	StopID      string    `json:"stop_id"`
	Kind        string    `json:"kind"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"` // hex of the file's bytes
	UploadedBy  string    `json:"uploaded_by"`
	UploadedAt  time.Time `json:"uploaded_at"`
	// Geotag is where the driver says the photo was taken (photos only;
	// nil: not given).
	Geotag *Geotag `json:"geotag,omitempty"`
}

// Geotag is a photo's optional position, as the driver's app sent it.
type Geotag struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Record is a Proof with the key of its file in the blob store: what the
// Store keeps. The key is never shown to clients.
type Record struct {
	Proof
	Key string `json:"key"`
}

// Upload is what a driver sends with a file. Geotag is used by Put;
// Stage ignores it (Staged.Commit takes it, so form fields may follow the
// file).
type Upload struct {
	TripID, StopID, Kind string
	DriverID             string
	Geotag               *Geotag
}

// Config is the service's configuration; zero values are the defaults.
type Config struct {
	// MaxPhoto and MaxSignature are the largest files of each kind, in
	// bytes (0: DefaultMaxPhoto, DefaultMaxSignature).
	MaxPhoto     int64
	MaxSignature int64
}

// Max is the size limit of kind (0 for an unknown kind).
func (c Config) Max(kind string) int64 {
	switch kind {
	case KindPhoto:
		if c.MaxPhoto > 0 {
			return c.MaxPhoto
		}
		return DefaultMaxPhoto
	case KindSignature:
		if c.MaxSignature > 0 {
			return c.MaxSignature
		}
		return DefaultMaxSignature
	}
	return 0
}

// ValidKind reports whether kind is a kind of proof.
func ValidKind(kind string) bool { return kind == KindPhoto || kind == KindSignature }

// ValidStopID reports whether id may be a stop id: 1..64 ASCII letters,
// digits, '_' and '-' (the alphabet of trip ids), so it is safe in a key
// and a path.
func ValidStopID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
