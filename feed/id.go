package feed

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ID is a parsed Redis Stream entry ID ("<ms>-<seq>"). Event IDs are stream
// IDs, so they order events of one topic: a larger ID is a later event.
// The zero ID ("0-0") sorts before every event.
type ID struct {
	Ms  uint64
	Seq uint64
}

// maxIDLen bounds the input ParseID looks at: two uint64s and a dash.
const maxIDLen = 20 + 1 + 20

// ParseID parses an event ID as it comes from an untrusted client
// (Last-Event-ID header, lastEventId query, long-poll cursor). It accepts
// "<ms>-<seq>" and the bare "<ms>" form Redis also accepts (seq 0), decimal
// digits only, no sign, no spaces, no leading zeros except "0" itself, and
// values that fit in uint64. Anything else is ErrInvalidID.
func ParseID(s string) (ID, error) {
	if s == "" || len(s) > maxIDLen {
		return ID{}, fmt.Errorf("%w: length %d", ErrInvalidID, len(s))
	}
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, ok := parseUint(msPart)
	if !ok {
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, clip(s))
	}
	var seq uint64
	if hasSeq {
		if seq, ok = parseUint(seqPart); !ok {
			return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, clip(s))
		}
	}
	return ID{Ms: ms, Seq: seq}, nil
}

// MustParseID is ParseID for IDs known to be valid (e.g. returned by Redis);
// it panics on a malformed ID.
func MustParseID(s string) ID {
	id, err := ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

func clip(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// String formats the ID the way Redis does: "<ms>-<seq>".
func (id ID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// IsZero reports whether id is "0-0", the position before any event.
func (id ID) IsZero() bool { return id == ID{} }

// Compare returns -1, 0 or +1 as id sorts before, equal to or after o.
func (id ID) Compare(o ID) int {
	switch {
	case id.Ms < o.Ms:
		return -1
	case id.Ms > o.Ms:
		return 1
	case id.Seq < o.Seq:
		return -1
	case id.Seq > o.Seq:
		return 1
	}
	return 0
}

// Less reports whether id sorts before o.
func (id ID) Less(o ID) bool { return id.Compare(o) < 0 }

// Next returns the smallest ID after id (used for exclusive range reads).
// ok is false for the largest possible ID.
func (id ID) Next() (next ID, ok bool) {
	switch {
	case id.Seq < ^uint64(0):
		return ID{id.Ms, id.Seq + 1}, true
	case id.Ms < ^uint64(0):
		return ID{id.Ms + 1, 0}, true
	}
	return id, false
}

// CompareIDs compares two event IDs given as strings. Both must be valid
// (see ParseID); an error is returned otherwise.
func CompareIDs(a, b string) (int, error) {
	ia, err := ParseID(a)
	if err != nil {
		return 0, err
	}
	ib, err := ParseID(b)
	if err != nil {
		return 0, err
	}
	return ia.Compare(ib), nil
}

// Errors. The api layer maps them to statuses in its one error table:
// ErrInvalidID → 400; ErrTrimmed and ErrUnknownID → 410 with a snapshot.
var (
	// ErrInvalidID: a malformed event ID or cursor.
	ErrInvalidID = errors.New("feed: invalid event id")
	// ErrTrimmed: the ID is older than what the stream retains; events after
	// it are gone, so continuity cannot be proven.
	ErrTrimmed = errors.New("feed: event id older than retention")
	// ErrUnknownID: a well-formed ID that is not an event of this topic
	// (never issued, from the future, or from a stream that has since
	// expired and been recreated).
	ErrUnknownID = errors.New("feed: unknown event id")
	// ErrSlowConsumer closes a subscription whose buffer overflowed; the
	// client resumes by ID.
	ErrSlowConsumer = errors.New("feed: slow consumer dropped")
	// ErrClosed: the broker was closed (node shutting down); the client
	// resumes by ID on another node.
	ErrClosed = errors.New("feed: broker closed")
	// ErrInvalidTopic: a topic name that cannot be mapped to a key.
	ErrInvalidTopic = errors.New("feed: invalid topic")
	// ErrInvalidEvent: an event type or payload that cannot be published.
	ErrInvalidEvent = errors.New("feed: invalid event")
	// ErrUnavailable: this node cannot reach Redis for the topic's live
	// fan-out (its pub/sub connection stayed down for Config.DownAfter, or
	// a subscription was not confirmed). The client should reconnect, and
	// reach a node that has Redis; the api maps it to 503.
	ErrUnavailable = errors.New("feed: redis unavailable")
)
