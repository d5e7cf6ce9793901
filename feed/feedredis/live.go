package feedredis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hextrack/hextrack/feed"
)

// liveLua defines hx_publish_live, prepended (after hx_publish) to every
// script made by Script: the live counterpart of hx_publish, for messages
// that are conflated and never stored (trip.location).
//
//	hx_publish_live(argv, i, seq, data)
//
// argv[i .. i+LiveArgc-1] are the args from Broker.LiveParams (pass ARGV and
// the index where they start); seq is the message's sequence (an integer
// the script computed, e.g. a position counter; receivers drop a message
// not newer than the last they delivered) and data its JSON payload. The
// message goes to the topic's current subscribers on every node (PUBLISH,
// or SPUBLISH under Cluster), exactly as Broker.PublishSeq sends it. The
// script must declare a key of the topic's slot (its stream key or a key
// with the same hash tag).
const liveLua = `
local function hx_publish_live(argv, i, seq, data)
  local msg = 'hx1\n\n' .. tostring(seq) .. '\n' .. argv[i+2] .. '\n' .. argv[i+3] .. '\n' .. data
  redis.call(argv[i+1], argv[i], msg)
end
`

// LiveArgc is the number of ARGV entries LiveParams returns and
// hx_publish_live consumes.
const LiveArgc = 4

// LiveParams returns the ARGV (LiveArgc) for hx_publish_live in a script
// made with Script: a live message of type typ on topic, stamped ts.
func (b *Publisher) LiveParams(topic, typ string, ts time.Time) ([]any, error) {
	if _, err := feed.CheckEvent(topic, typ, nil); err != nil {
		return nil, err
	}
	cmd := "PUBLISH"
	if b.sharded {
		cmd = "SPUBLISH"
	}
	if ts.IsZero() {
		ts = time.Now()
	}
	return []any{feed.Channel(b.cfg.Prefix, topic), cmd, typ, ts.UTC().Format(time.RFC3339Nano)}, nil
}

// PublishSeq sends a live-only message with sequence seq (Event.Seq on
// receipt), as hx_publish_live does from a script: to the topic's current
// subscribers on every node, not stored, not replayed on resume.
func (b *Publisher) PublishSeq(ctx context.Context, topic, typ string, seq int64, data json.RawMessage) error {
	return b.publishLive(ctx, topic, typ, strconv.FormatInt(seq, 10), data)
}

// publishLive validates and sends one live-only message; seq is its
// decimal sequence, or "" for none (PublishLive).
func (b *Publisher) publishLive(ctx context.Context, topic, typ, seq string, data json.RawMessage) error {
	data, err := feed.CheckEvent(topic, typ, data)
	if err != nil {
		return err
	}
	msg := encodeWire("", seq, typ, time.Now().UTC().Format(time.RFC3339Nano), data)
	if b.sharded {
		err = b.rdb.SPublish(ctx, feed.Channel(b.cfg.Prefix, topic), msg).Err()
	} else {
		err = b.rdb.Publish(ctx, feed.Channel(b.cfg.Prefix, topic), msg).Err()
	}
	if err != nil {
		return fmt.Errorf("feed: publish live %s: %w", topic, err)
	}
	return nil
}
