package natsexport

import (
	"strings"

	"github.com/hextrack/hextrack/archive"
)

// Subject is the subject ev is published on, under prefix:
//
//	<prefix>.<type>.<trip id>         an event of a trip's topic ("trip:<id>")
//	<prefix>.<type>.<kind>.<tag>      an event of another topic ("driver:d1" → ….driver.d1)
//	<prefix>.<type>._.<topic>         an event of a topic without a kind ("ops")
//
// so "hextrack.trip.status.*" is every trip's status changes and
// "hextrack.*.*.t_123" … every two-part event type of one trip. A type's
// dots are kept (they separate tokens); a byte that a subject token may
// not hold (., *, >, space or control) in a topic's part is written "_",
// and an empty token "_": the envelope's "topic" is exact, the subject is
// for filtering.
func Subject(prefix string, ev archive.Event) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(ev.Type) + len(ev.Topic) + 4)
	b.WriteString(prefix)
	for _, t := range strings.Split(ev.Type, ".") {
		b.WriteByte('.')
		token(&b, t)
	}
	kind, tag, hasKind := strings.Cut(ev.Topic, ":")
	switch {
	case ev.TripID != "" && ev.Topic == "trip:"+ev.TripID:
		b.WriteByte('.')
		token(&b, ev.TripID)
	case hasKind:
		b.WriteByte('.')
		token(&b, kind)
		b.WriteByte('.')
		token(&b, tag)
	default:
		b.WriteString("._.")
		token(&b, kind) // the whole topic
	}
	return b.String()
}

// token writes s as one subject token.
func token(b *strings.Builder, s string) {
	if s == "" {
		b.WriteByte('_')
		return
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			c = '_'
		}
		b.WriteByte(c)
	}
}

// MsgID is ev's Nats-Msg-Id: "<topic>/<event id>". Feed event IDs are a
// topic's Redis Stream IDs, unique only within the topic, so the topic
// qualifies them; the ID holds no "/", so the last one splits the two.
func MsgID(ev archive.Event) string { return ev.Topic + "/" + ev.ID }
