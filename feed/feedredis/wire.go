package feedredis

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/hextrack/hextrack/feed"
)

// The pub/sub wire format (internal; written by the Lua publish functions
// hx_publish and hx_publish_live, PublishLive and PublishSeq, read by the
// hub). Fields are newline separated and data, which may contain newlines,
// is last:
//
//	hx1\n<id>\n<prev id>\n<type>\n<ts RFC3339Nano>\n<data JSON>
//
// prev is the stream's last entry before this one (empty if unknown), which
// lets a subscriber prove that a live event directly follows the last one it
// delivered; otherwise it re-reads the stream (gap recovery). A live-only
// message has no id, and its prev field carries its sequence instead
// (Event.Seq; empty: none).
const wireMagic = "hx1"

type wireMsg struct {
	ev      feed.Event
	enc     []byte  // json.Marshal(ev), set once when there are subscribers
	id      feed.ID // parsed ev.ID (durable only)
	prev    feed.ID
	hasPrev bool
}

func encodeWire(id, prev, typ, ts string, data []byte) string {
	var sb strings.Builder
	sb.Grow(len(wireMagic) + len(id) + len(prev) + len(typ) + len(ts) + len(data) + 5)
	sb.WriteString(wireMagic)
	for _, s := range [...]string{id, prev, typ, ts} {
		sb.WriteByte('\n')
		sb.WriteString(s)
	}
	sb.WriteByte('\n')
	sb.Write(data)
	return sb.String()
}

// decodeWire parses a pub/sub payload for topic. ok is false for anything
// malformed (it is then ignored: a durable event it might have been is
// recovered from the stream by the next gap check).
func decodeWire(topic, payload string) (m *wireMsg, ok bool) {
	parts := strings.SplitN(payload, "\n", 6)
	if len(parts) != 6 || parts[0] != wireMagic {
		return nil, false
	}
	ts, err := time.Parse(time.RFC3339Nano, parts[4])
	if err != nil {
		return nil, false
	}
	m = &wireMsg{ev: feed.Event{ID: parts[1], Type: parts[3], Topic: topic, TS: ts, Data: json.RawMessage(parts[5])}}
	if m.ev.ID == "" && parts[2] != "" {
		if m.ev.Seq, err = strconv.ParseInt(parts[2], 10, 64); err != nil {
			return nil, false
		}
	}
	if m.ev.ID != "" {
		if m.id, err = feed.ParseID(m.ev.ID); err != nil {
			return nil, false
		}
		if parts[2] != "" {
			if m.prev, err = feed.ParseID(parts[2]); err != nil {
				return nil, false
			}
			m.hasPrev = true
		}
	}
	return m, true
}
