// Package jsonscan reads the members of one JSON object without reflection
// and without allocating, for the hot decoders of untrusted input (driver
// pings, WebSocket frames).
//
// It is a fast path only. It accepts a strict subset of JSON: object keys
// must be printable ASCII without escapes, and anything else it does not
// recognize stops the scan with OK false. Callers then decode the input with
// encoding/json, which stays the reference for results, errors and corner
// cases; a caller uses a scan's values only when the whole object was read
// (OK). Scalars and strings are checked against the JSON grammar; arrays and
// objects are only delimited (see Members.Next).
//
// jsonscan imports only the standard library.
package jsonscan

import (
	"bytes"
	"encoding/json"
)

// Kind is the JSON type of a member's value.
type Kind uint8

// Value kinds.
const (
	Invalid Kind = iota
	String
	Number
	True
	False
	Null
	Array
	Object
)

// Members iterates over the members of the JSON object that is all of its
// input (surrounding whitespace allowed):
//
//	m := jsonscan.Open(b)
//	for m.Next() {
//		... m.Key, m.Val, m.Kind ...
//	}
//	if !m.OK() { /* not handled: decode b with encoding/json */ }
type Members struct {
	// Key is the current member's key, without quotes (never escaped).
	Key []byte
	// Val is the current member's value as it appears in the input: a
	// string with its quotes, a number, a literal, or an array or object
	// from its opening to its closing bracket.
	Val []byte
	// Kind is Val's type.
	Kind Kind
	// Plain reports, for a String, that it holds only printable ASCII and
	// no escape, so Val[1:len(Val)-1] is its decoded content.
	Plain bool

	b    []byte
	i    int
	n    int
	done bool
	bad  bool
	in   bool // OpenIn: the object ends at its closing brace
}

// Open starts reading the object b holds.
func Open(b []byte) Members {
	m := Members{b: b}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		m.bad = true
		return m
	}
	m.i = i + 1
	return m
}

// OpenIn starts reading the object that starts at b[i] (after
// whitespace) inside a larger input, an element of an array say: the scan
// ends at the object's closing brace, whatever follows it, and End tells
// where that is.
func OpenIn(b []byte, i int) Members {
	m := Members{b: b, in: true}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		m.bad = true
		return m
	}
	m.i = i + 1
	return m
}

// End is the index in the input just after the object's closing brace,
// once a scan opened by OpenIn is OK.
func (m *Members) End() int { return m.i }

// Next reads the next member. It returns false at the end of the object
// and when the input leaves the subset jsonscan reads; OK tells which.
//
// A String, Number or literal value is valid JSON. An Array or Object value
// is only delimited (its brackets balance outside strings): a caller that
// uses or ignores it must check it (json.Valid) or decode it with a
// validating decoder before trusting that the input was valid JSON.
func (m *Members) Next() bool {
	if m.bad || m.done {
		return false
	}
	b := m.b
	i := skipSpace(b, m.i)
	if i >= len(b) {
		return m.fail()
	}
	if b[i] == '}' && m.n == 0 {
		return m.end(i + 1)
	}
	if m.n > 0 {
		switch b[i] {
		case '}':
			return m.end(i + 1)
		case ',':
			i = skipSpace(b, i+1)
		default:
			return m.fail()
		}
	}
	if i >= len(b) || b[i] != '"' {
		return m.fail()
	}
	j := i + 1
	for j < len(b) && b[j] != '"' {
		if c := b[j]; c < 0x20 || c > 0x7e || c == '\\' {
			return m.fail()
		}
		j++
	}
	if j >= len(b) {
		return m.fail()
	}
	key := b[i+1 : j]
	i = skipSpace(b, j+1)
	if i >= len(b) || b[i] != ':' {
		return m.fail()
	}
	i = skipSpace(b, i+1)
	end, kind, plain := value(b, i)
	if kind == Invalid {
		return m.fail()
	}
	m.Key, m.Val, m.Kind, m.Plain = key, b[i:end], kind, plain
	m.i = end
	m.n++
	return true
}

// OK reports whether the whole input was read: one object, every member
// within the subset, nothing but whitespace after it.
func (m *Members) OK() bool { return m.done && !m.bad }

func (m *Members) fail() bool {
	m.bad = true
	m.Key, m.Val, m.Kind = nil, nil, Invalid
	return false
}

func (m *Members) end(i int) bool {
	if m.in {
		m.i = i
	} else if skipSpace(m.b, i) != len(m.b) {
		return m.fail()
	}
	m.done = true
	m.Key, m.Val, m.Kind = nil, nil, Invalid
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// value returns the end and kind of the value at b[i] (Invalid when there
// is none), and for a string whether it is plain.
func value(b []byte, i int) (end int, kind Kind, plain bool) {
	if i >= len(b) {
		return 0, Invalid, false
	}
	switch c := b[i]; {
	case c == '"':
		return str(b, i)
	case c == '-' || c >= '0' && c <= '9':
		if end, ok := NumberEnd(b, i); ok {
			return end, Number, false
		}
	case c == 't':
		return literal(b, i, "true", True)
	case c == 'f':
		return literal(b, i, "false", False)
	case c == 'n':
		return literal(b, i, "null", Null)
	case c == '[':
		return nested(b, i, Array)
	case c == '{':
		return nested(b, i, Object)
	}
	return 0, Invalid, false
}

func literal(b []byte, i int, lit string, k Kind) (int, Kind, bool) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), k, false
	}
	return 0, Invalid, false
}

// str reads the string whose quote is at b[i], checking its escapes and
// that it holds no control character, as the JSON grammar requires.
func str(b []byte, i int) (int, Kind, bool) {
	plain := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, String, plain
		case c < 0x20:
			return 0, Invalid, false
		case c == '\\':
			plain = false
			if j+1 >= len(b) {
				return 0, Invalid, false
			}
			j++
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return 0, Invalid, false
				}
				for _, h := range b[j+1 : j+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return 0, Invalid, false
					}
				}
				j += 4
			default:
				return 0, Invalid, false
			}
		case c > 0x7e:
			plain = false
		}
	}
	return 0, Invalid, false
}

// NumberEnd returns the end of the JSON number that starts at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, the longest such prefix.
// ok is false when no number starts there.
func NumberEnd(b []byte, i int) (end int, ok bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// nested delimits the array or object at b[i] by balancing brackets outside
// strings; it does not check what is inside.
func nested(b []byte, i int, k Kind) (int, Kind, bool) {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			end, kind, _ := str(b, i)
			if kind == Invalid {
				return 0, Invalid, false
			}
			i = end
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, k, false
			}
		}
		i++
	}
	return 0, Invalid, false
}

// Ignorable reports whether the current member, whose key the caller has
// no field for, may be skipped as encoding/json would skip it: its key
// matches none of fields case-insensitively (encoding/json would decode
// such a key into that field) and a nested value is valid JSON (a scalar
// was already checked by Next). False: decode the input with encoding/json.
func (m *Members) Ignorable(fields []string) bool {
	for _, name := range fields {
		if bytes.EqualFold(m.Key, []byte(name)) {
			return false
		}
	}
	return !(m.Kind == Array || m.Kind == Object) || json.Valid(m.Val)
}
