package zone

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// Built-in kinds. Any other [a-z0-9_]{1,32} kind is accepted as a custom
// kind; only service_area has a meaning of its own (trip requests outside
// every service area are refused, Index.Serves).
const (
	KindServiceArea = "service_area"
	KindQueue       = "queue"
	KindRestricted  = "restricted"
)

// Zone is a named area drivers enter, leave and dwell in.
type Zone struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Geometry is the GeoJSON Polygon or MultiPolygon as given (validated).
	Geometry json.RawMessage `json:"geometry"`
	// DwellAfter is how long a driver stays inside before zone.dwell.
	DwellAfter time.Duration `json:"-"`
	// Version counts the zone's changes, from 1.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Polygons is Geometry parsed (open rings); set by Parse and Validate.
	Polygons []geo.Polygon `json:"-"`
}

// MarshalJSON adds dwell_after_s.
func (z Zone) MarshalJSON() ([]byte, error) {
	type plain Zone
	return json.Marshal(struct {
		plain
		DwellAfterS float64 `json:"dwell_after_s"`
	}{plain(z), z.DwellAfter.Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes and parses the geometry
// again (stored zones were validated when written; the limits are not
// checked again, so lowering them keeps existing zones).
func (z *Zone) UnmarshalJSON(b []byte) error {
	type plain Zone
	var v struct {
		plain
		DwellAfterS float64 `json:"dwell_after_s"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*z = Zone(v.plain)
	z.DwellAfter = time.Duration(v.DwellAfterS * float64(time.Second))
	polys, err := parseGeometry(z.Geometry, Config{MaxVertices: -1, MaxAreaKM2: -1})
	if err != nil {
		return err
	}
	z.Polygons = polys
	return nil
}

// Inside is a driver inside a zone (who is inside, zoneredis).
type Inside struct {
	DriverID string    `json:"driver_id"`
	Since    time.Time `json:"since"`
	Dwelt    bool      `json:"dwelt"`
	Last     Fix       `json:"last_fix"`
}

// Input creates a zone (all of Name, Kind, Geometry) or changes one (nil
// fields are kept).
type Input struct {
	Name        *string         `json:"name"`
	Kind        *string         `json:"kind"`
	Geometry    json.RawMessage `json:"geometry"`
	DwellAfterS *float64        `json:"dwell_after_s"`
}

// Config bounds zones. Zero values are documented per field.
type Config struct {
	// MaxVertices bounds the vertices of a zone, over all its rings (the
	// closing position not counted). Zero: 1000; negative: no limit.
	MaxVertices int
	// MaxAreaKM2 bounds a zone's area in km². Zero: 2500 (50 km × 50 km);
	// negative: no limit.
	MaxAreaKM2 float64
	// DwellAfter is the dwell delay of a zone created without one.
	// Zero: 2 minutes.
	DwellAfter time.Duration
}

// WithDefaults fills the zero values.
func (c Config) WithDefaults() Config {
	if c.MaxVertices == 0 {
		c.MaxVertices = 1000
	}
	if c.MaxAreaKM2 == 0 {
		c.MaxAreaKM2 = 2500
	}
	if c.DwellAfter <= 0 {
		c.DwellAfter = 2 * time.Minute
	}
	return c
}

// maxDwell bounds a zone's dwell delay.
const maxDwell = 24 * time.Hour

// New returns a zone from in (every field but DwellAfterS required),
// validated against cfg, with a fresh id, at version 1.
func New(in Input, cfg Config, now time.Time) (Zone, error) {
	if in.Name == nil || in.Kind == nil || len(in.Geometry) == 0 {
		return Zone{}, fmt.Errorf("%w: name, kind and geometry are required", ErrInvalid)
	}
	z := Zone{ID: NewID(), Version: 1, CreatedAt: now, UpdatedAt: now, DwellAfter: cfg.WithDefaults().DwellAfter}
	if err := z.Apply(in, cfg); err != nil {
		return Zone{}, err
	}
	return z, nil
}

// Apply changes z by in (nil fields kept), validated against cfg. It does
// not touch Version or the times; on error z is unchanged.
func (z *Zone) Apply(in Input, cfg Config) error {
	cfg = cfg.WithDefaults()
	n := *z
	if in.Name != nil {
		if l := len(*in.Name); l == 0 || l > 200 {
			return fmt.Errorf("%w: name must be 1–200 bytes", ErrInvalid)
		}
		n.Name = *in.Name
	}
	if in.Kind != nil {
		if !ValidKind(*in.Kind) {
			return fmt.Errorf("%w: kind %q: use service_area, queue, restricted or a custom [a-z0-9_]{1,32} kind", ErrInvalid, clip(*in.Kind))
		}
		n.Kind = *in.Kind
	}
	if in.DwellAfterS != nil {
		d := time.Duration(*in.DwellAfterS * float64(time.Second))
		if !(*in.DwellAfterS >= 1) || d > maxDwell {
			return fmt.Errorf("%w: dwell_after_s must be 1–86400", ErrInvalid)
		}
		n.DwellAfter = d
	}
	if len(in.Geometry) > 0 {
		polys, err := parseGeometry(in.Geometry, cfg)
		if err != nil {
			return err
		}
		n.Geometry = append(json.RawMessage(nil), in.Geometry...)
		n.Polygons = polys
	}
	*z = n
	return nil
}

// ValidKind reports whether k is a kind: [a-z0-9_]{1,32}.
func ValidKind(k string) bool {
	if len(k) == 0 || len(k) > 32 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// NewID returns a fresh zone id, "z_" and 16 hex digits.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "z_" + hex.EncodeToString(b[:])
}

// ValidID reports whether id is a zone id as NewID makes them.
func ValidID(id string) bool {
	if len(id) != 18 || id[:2] != "z_" {
		return false
	}
	_, err := hex.DecodeString(id[2:])
	return err == nil
}

// Topic is the feed topic of a zone's events.
func Topic(id string) string { return "zone:" + id }

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
