package driver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/jsonscan"
)

// Ping is one GPS fix sent by a driver app.
type Ping struct {
	Pos geo.Point
	TS  time.Time
	// Seq increases per driver; duplicates and replays are recognized by it.
	Seq int64
	// Optional fields; NaN when the client did not send them.
	Accuracy float64 // meters
	Speed    float64 // m/s
	Heading  float64 // degrees, [0, 360)
}

// Rejection reasons, reported per ping index.
const (
	ReasonMissingField   = "missing_field"
	ReasonNotFinite      = "not_finite"
	ReasonLatRange       = "lat_out_of_range"
	ReasonLngRange       = "lng_out_of_range"
	ReasonFuture         = "ts_in_future"
	ReasonTooOld         = "ts_too_old"
	ReasonBadSeq         = "bad_seq"
	ReasonBadAccuracy    = "bad_accuracy"
	ReasonBadSpeed       = "bad_speed"
	ReasonBadHeading     = "bad_heading"
	ReasonImplausible    = "implausible_jump"
	ReasonNullIsland     = "null_island"
	maxPlausibleAccuracy = 10000.0 // meters; worse fixes are useless
	maxPlausibleSpeed    = 100.0   // m/s reported by the device
)

// Limits bounds what Validate accepts. Zero values are documented per field.
type Limits struct {
	// MaxFuture is how far ahead of the server clock a ts may be. Zero: 30s.
	MaxFuture time.Duration
	// MaxAge is how old a ts may be (late offline batches). Zero: 24h.
	MaxAge time.Duration
	// MaxJumpSpeed is the fastest implied speed between two fixes, m/s. Zero: 70.
	MaxJumpSpeed float64
	// MaxBatch is the largest batch accepted. Zero: 500.
	MaxBatch int
}

// WithDefaults is l with each zero field set to its documented default.
func (l Limits) WithDefaults() Limits {
	if l.MaxFuture <= 0 {
		l.MaxFuture = 30 * time.Second
	}
	if l.MaxAge <= 0 {
		l.MaxAge = 24 * time.Hour
	}
	if l.MaxJumpSpeed <= 0 {
		l.MaxJumpSpeed = 70
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = 500
	}
	return l
}

// Validate checks one ping against the ranges and the clock and returns the
// rejection reason, or "" when the ping is acceptable.
func Validate(p Ping, now time.Time, l Limits) string {
	l = l.WithDefaults()
	switch {
	case !finite(p.Pos.Lat) || !finite(p.Pos.Lng):
		return ReasonNotFinite
	case p.Pos.Lat < -90 || p.Pos.Lat > 90:
		return ReasonLatRange
	case p.Pos.Lng < -180 || p.Pos.Lng > 180:
		return ReasonLngRange
	case p.Pos.Lat == 0 && p.Pos.Lng == 0:
		// (0,0) is what broken GPS stacks report when they have no fix.
		return ReasonNullIsland
	case p.Seq <= 0:
		return ReasonBadSeq
	case p.TS.IsZero():
		return ReasonMissingField
	case p.TS.After(now.Add(l.MaxFuture)):
		return ReasonFuture
	case p.TS.Before(now.Add(-l.MaxAge)):
		return ReasonTooOld
	case !optional(p.Accuracy, 0, maxPlausibleAccuracy):
		return ReasonBadAccuracy
	case !optional(p.Speed, 0, maxPlausibleSpeed):
		return ReasonBadSpeed
	case !optional(p.Heading, 0, 360) || p.Heading == 360:
		return ReasonBadHeading
	}
	return ""
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// optional accepts NaN (not sent) or a finite value within [lo, hi].
func optional(f, lo, hi float64) bool {
	if math.IsNaN(f) {
		return true
	}
	return !math.IsInf(f, 0) && f >= lo && f <= hi
}

// pingJSON is the wire form; pointers tell a missing field from a zero.
type pingJSON struct {
	Lat      *float64   `json:"lat"`
	Lng      *float64   `json:"lng"`
	TS       *Timestamp `json:"ts"`
	Seq      *int64     `json:"seq"`
	Accuracy *float64   `json:"accuracy,omitempty"`
	Speed    *float64   `json:"speed,omitempty"`
	Heading  *float64   `json:"heading,omitempty"`
}

// DecodedPing is a ping as decoded, with the reason it must be rejected
// before validation (a missing field), if any.
type DecodedPing struct {
	Ping
	Missing string // name of the first missing required field, or ""
}

// DecodePings decodes a request body holding one ping object or
// {"pings":[...]}. Syntax and type errors wrap ErrInvalid and say where.
// A batch larger than maxBatch wraps ErrTooManyPings. single reports whether
// the body was one ping rather than a batch.
func DecodePings(body []byte, maxBatch int) (pings []DecodedPing, single bool, err error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, false, fmt.Errorf("%w: empty body", ErrInvalid)
	}
	if out, ok := decodeBodyFast(trimmed, maxBatch); ok {
		return out, false, nil
	}
	return decodeBodySlow(trimmed, maxBatch)
}

// decodeBodySlow is DecodePings on a trimmed body with encoding/json (the
// reference; errors are reported only here).
func decodeBodySlow(trimmed []byte, maxBatch int) (pings []DecodedPing, single bool, err error) {
	// A map, not a struct: "pings" is a batch only spelled exactly so
	// (encoding/json matches struct fields case-insensitively).
	var probe map[string]json.RawMessage
	if err := strictUnmarshal(trimmed, &probe); err != nil {
		return nil, false, err
	}
	if raw, ok := probe["pings"]; ok {
		out, err := DecodePingList(raw, maxBatch)
		if err != nil {
			return nil, false, err
		}
		return out, false, nil
	}
	p, err := decodeSlow(trimmed)
	if err != nil {
		return nil, true, err
	}
	return []DecodedPing{p}, true, nil
}

// decodeBodyFast decodes a batch body that decodes without error, exactly
// as decodeBodySlow does, without encoding/json's passes over the whole
// body: a one-member scan finds "pings" (a map key: case-sensitive) and
// checks the other members, then DecodePingList decodes. ok is false
// otherwise (one ping, an error...), and decodeBodySlow decides.
func decodeBodyFast(body []byte, maxBatch int) (pings []DecodedPing, ok bool) {
	var list []byte
	m := jsonscan.Open(body)
	for m.Next() {
		switch {
		case string(m.Key) == "pings":
			if list != nil {
				return nil, false // the last would win: leave it to the map
			}
			list = m.Val
		case m.Kind == jsonscan.Array || m.Kind == jsonscan.Object:
			if !json.Valid(m.Val) {
				return nil, false
			}
		}
	}
	if !m.OK() || list == nil {
		return nil, false
	}
	// DecodePingList succeeds only on an array whose elements all decoded,
	// i.e. valid JSON, which the map probe would have accepted too.
	out, err := DecodePingList(list, maxBatch)
	if err != nil {
		return nil, false
	}
	return out, true
}

// DecodePingList decodes a JSON array of ping objects, the value of "pings"
// in a batch body, exactly as DecodePings decodes that batch: the same
// DecodedPing values, the same limit (maxBatch; zero: 500) and the same
// errors, prefixed "pings" and "pings[i]" as there. A caller that already
// holds the array (a json.RawMessage of a larger message) need not wrap it
// in a body again.
//
// The batches apps send are read by decodeListFast, without reflection;
// anything it declines (errors included) by decodeListSlow, the reference.
func DecodePingList(raw json.RawMessage, maxBatch int) ([]DecodedPing, error) {
	if maxBatch <= 0 {
		maxBatch = 500
	}
	raw = bytes.TrimSpace(raw) // as in a body: syntax error offsets count from the array
	if out, ok := decodeListFast(raw, maxBatch); ok {
		return out, nil
	}
	return decodeListSlow(raw, maxBatch)
}

// decodeListSlow is DecodePingList with encoding/json.
func decodeListSlow(raw []byte, maxBatch int) ([]DecodedPing, error) {
	var list []json.RawMessage
	if err := strictUnmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("pings: %w", err)
	}
	if len(list) > maxBatch {
		return nil, fmt.Errorf("%w: %d pings, at most %d per request", ErrTooManyPings, len(list), maxBatch)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: pings: empty list", ErrInvalid)
	}
	out := make([]DecodedPing, len(list))
	for i, r := range list {
		p, err := decodeSlow(r)
		if err != nil {
			return nil, fmt.Errorf("pings[%d]: %w", i, err)
		}
		out[i] = p
	}
	return out, nil
}

// decodeListFast decodes, in one pass, a JSON array (raw, trimmed) of 1 to
// maxBatch ping objects in the shape decodeMembers reads, giving what
// decodeListSlow gives; ok is false for anything else.
func decodeListFast(raw []byte, maxBatch int) (out []DecodedPing, ok bool) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	i := skipSpace(raw, 1)
	for len(out) < maxBatch {
		m := jsonscan.OpenIn(raw, i)
		d, ok := decodeMembers(&m)
		if !ok {
			return nil, false
		}
		if out == nil {
			// The pings of a batch have about the same size: room for
			// the list, from the first one's, with 1/8 to spare.
			n := len(raw) / max(1, m.End()-i)
			out = make([]DecodedPing, 0, min(n+n/8+1, maxBatch))
		}
		out = append(out, d)
		next, last, ok := afterElem(raw, m.End())
		if !ok {
			return nil, false
		}
		if last {
			return out, true
		}
		i = next
	}
	return nil, false // more than maxBatch (or none allowed)
}

// afterElem reads what follows an array element of raw that ends at end: a
// comma (next: where the following element starts) or the closing bracket
// with nothing after it (last). ok is false for anything else.
func afterElem(raw []byte, end int) (next int, last, ok bool) {
	i := skipSpace(raw, end)
	if i >= len(raw) {
		return 0, false, false
	}
	switch raw[i] {
	case ',':
		return skipSpace(raw, i+1), false, true
	case ']':
		return 0, true, skipSpace(raw, i+1) == len(raw)
	}
	return 0, false, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// pingFields are pingJSON's keys, in the bit order decodeMembers tracks them.
var pingFields = [...]string{"lat", "lng", "ts", "seq", "accuracy", "speed", "heading"}

// decodeMembers decodes the ping object m reads without reflection, giving
// exactly what decodeSlow gives. It handles the common shape: an object whose
// keys are plain and spelled like pingJSON's (other keys are skipped, as
// encoding/json skips them), each known key once, with numbers for the
// numeric fields and a plain string or a number for ts. ok is false for
// anything else (null, a duplicate key, a key differing only in case,
// escapes, a number out of range, invalid JSON...).
func decodeMembers(m *jsonscan.Members) (d DecodedPing, ok bool) {
	d.Accuracy, d.Speed, d.Heading = math.NaN(), math.NaN(), math.NaN()
	var seen uint8
	for m.Next() {
		var f *float64
		var bit uint8
		switch string(m.Key) {
		case "lat":
			bit, f = 1<<0, &d.Pos.Lat
		case "lng":
			bit, f = 1<<1, &d.Pos.Lng
		case "ts":
			bit = 1 << 2
		case "seq":
			bit = 1 << 3
		case "accuracy":
			bit, f = 1<<4, &d.Accuracy
		case "speed":
			bit, f = 1<<5, &d.Speed
		case "heading":
			bit, f = 1<<6, &d.Heading
		default:
			if !m.Ignorable(pingFields[:]) {
				return DecodedPing{}, false
			}
			continue
		}
		if seen&bit != 0 {
			return DecodedPing{}, false
		}
		seen |= bit
		switch {
		case f != nil:
			if m.Kind != jsonscan.Number {
				return DecodedPing{}, false
			}
			v, err := strconv.ParseFloat(string(m.Val), 64)
			if err != nil {
				return DecodedPing{}, false
			}
			*f = v
		case bit == 1<<2:
			var ts Timestamp
			switch {
			case m.Kind == jsonscan.String && m.Plain:
				if ts.parseRFC3339(string(m.Val[1:len(m.Val)-1])) != nil {
					return DecodedPing{}, false
				}
			case m.Kind != jsonscan.Number || ts.UnmarshalJSON(m.Val) != nil:
				return DecodedPing{}, false
			}
			d.TS = time.Time(ts)
		default: // seq
			if m.Kind != jsonscan.Number {
				return DecodedPing{}, false
			}
			n, err := strconv.ParseInt(string(m.Val), 10, 64)
			if err != nil {
				return DecodedPing{}, false
			}
			d.Seq = n
		}
	}
	if !m.OK() {
		return DecodedPing{}, false
	}
	for i, name := range pingFields[:4] {
		if seen&(1<<i) == 0 {
			d.Missing = name
			break
		}
	}
	return d, true
}

// decodeSlow decodes one ping object with encoding/json, the reference.
func decodeSlow(raw []byte) (DecodedPing, error) {
	var j pingJSON
	if err := strictUnmarshal(raw, &j); err != nil {
		return DecodedPing{}, err
	}
	return j.ping(), nil
}

func (j pingJSON) ping() DecodedPing {
	var d DecodedPing
	d.Accuracy, d.Speed, d.Heading = math.NaN(), math.NaN(), math.NaN()
	switch {
	case j.Lat == nil:
		d.Missing = "lat"
	case j.Lng == nil:
		d.Missing = "lng"
	case j.TS == nil:
		d.Missing = "ts"
	case j.Seq == nil:
		d.Missing = "seq"
	}
	if j.Lat != nil {
		d.Pos.Lat = *j.Lat
	}
	if j.Lng != nil {
		d.Pos.Lng = *j.Lng
	}
	if j.TS != nil {
		d.TS = time.Time(*j.TS)
	}
	if j.Seq != nil {
		d.Seq = *j.Seq
	}
	if j.Accuracy != nil {
		d.Accuracy = *j.Accuracy
	}
	if j.Speed != nil {
		d.Speed = *j.Speed
	}
	if j.Heading != nil {
		d.Heading = *j.Heading
	}
	return d
}

// strictUnmarshal decodes JSON and turns decoder errors into ErrInvalid
// errors that say where the problem is.
func strictUnmarshal(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ts *tsError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: malformed JSON at byte %d: %s", ErrInvalid, se.Offset, se.Error())
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return fmt.Errorf("%w: %s: expected %s, got JSON %s (byte %d)", ErrInvalid, field, te.Type, te.Value, te.Offset)
	case errors.As(err, &ts):
		return fmt.Errorf("%w: ts: %s", ErrInvalid, ts.msg)
	default:
		return fmt.Errorf("%w: malformed JSON: %s", ErrInvalid, err.Error())
	}
}

// Timestamp is a ping time on the wire: an RFC 3339 string or unix
// milliseconds as a number.
type Timestamp time.Time

type tsError struct{ msg string }

func (e *tsError) Error() string { return e.msg }

// isDecimal reports whether b is a decimal number in the form
// -?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)? (leading zeros allowed).
func isDecimal(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	j := skipDigits(b, i)
	if j == i {
		return false
	}
	i = j
	if i < len(b) && b[i] == '.' {
		j = skipDigits(b, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j = skipDigits(b, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(b)
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// UnmarshalJSON accepts "2024-11-25T10:00:00Z" or 1732528800000.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return &tsError{"must be an RFC 3339 string or unix milliseconds"}
		}
		return t.parseRFC3339(s)
	}
	if !isDecimal(b) {
		return &tsError{"must be an RFC 3339 string or unix milliseconds"}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || !finite(f) || f < 0 || f > 1e15 {
		return &tsError{"unix milliseconds out of range"}
	}
	*t = Timestamp(time.UnixMilli(int64(f)))
	return nil
}

// parseRFC3339 sets t from s. s does not escape (it may live on the stack).
func (t *Timestamp) parseRFC3339(s string) error {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return &tsError{strconv.Quote(s) + " is not RFC 3339"} // as %q
	}
	*t = Timestamp(v)
	return nil
}

// MarshalJSON writes RFC 3339 with nanoseconds.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format(time.RFC3339Nano))
}
