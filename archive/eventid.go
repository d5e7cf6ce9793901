package archive

import (
	"fmt"
	"strconv"
	"strings"
)

// EventID is a parsed feed event ID ("<ms>-<seq>", a Redis Stream ID). The
// store keeps the two numbers, so events of a topic sort as the feed does
// ("…-10" after "…-9").
type EventID struct {
	Ms, Seq int64
}

// ParseEventID parses an event ID in the form feed.ParseID accepts:
// "<ms>-<seq>" or a bare "<ms>" (seq 0), decimal digits only, no leading
// zeros except "0" itself. Both numbers must fit in int64 (SQL's BIGINT);
// anything else is ErrInvalidCursor. (archive keeps its own copy of these
// few lines so that it imports no other hextrack package.)
func ParseEventID(s string) (EventID, error) {
	ms, seq, hasSeq := strings.Cut(s, "-")
	m, ok := parseInt(ms)
	var q int64
	if ok && hasSeq {
		q, ok = parseInt(seq)
	}
	if !ok {
		return EventID{}, fmt.Errorf("%w: event id %q is not <ms>-<seq>", ErrInvalidCursor, clip(s))
	}
	return EventID{Ms: m, Seq: q}, nil
}

func parseInt(s string) (int64, bool) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// String formats the ID as feed does: "<ms>-<seq>".
func (id EventID) String() string {
	return strconv.FormatInt(id.Ms, 10) + "-" + strconv.FormatInt(id.Seq, 10)
}

// clip shortens untrusted input quoted in an error.
func clip(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}
