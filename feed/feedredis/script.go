package feedredis

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
)

// luaLib defines hx_publish, prepended to every script made by Script.
//
//	local id, fresh = hx_publish(stream_key, dedupe_key, argv, i [, data])
//
// stream_key and dedupe_key are the two keys from Broker.PublishParams (pass
// them in KEYS: under Cluster every key of a script must share one slot, which
// the hash tags guarantee for the topic's keys and the domain keys tagged
// with the same id). argv[i .. i+PublishArgc-1] are the args from
// PublishParams (pass ARGV and the index where they start). data, if given,
// replaces the JSON payload from PublishParams (e.g. to embed a version the
// script computed); it must be valid JSON.
//
// It appends the event to the stream (MAXLEN ~ and MINID ~ trimming, key
// expiry), publishes it on the topic's channel (SPUBLISH under Cluster) and
// remembers the ID under the idempotency key. It returns the new ID and 1, or,
// when the idempotency key was already used, the first ID and 0 without
// writing or publishing anything.
const luaLib = `
local function hx_publish(stream, dedupe, argv, i, data)
  i = i or 1
  local channel, sharded, maxlen, maxage = argv[i], argv[i+1], tonumber(argv[i+2]), tonumber(argv[i+3])
  local use_dedupe, dedupe_ttl, typ, ts = argv[i+4] == '1', argv[i+5], argv[i+6], argv[i+7]
  data = data or argv[i+8]
  if use_dedupe then
    local old = redis.call('GET', dedupe)
    if old then return old, 0 end
  end
  -- prev: the stream's last ID before this entry ('' for the first entry of
  -- a new stream). Stored in the entry and sent with the live message, it
  -- lets readers prove continuity across trimming and lost messages.
  local prev = ''
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last > 0 then
    prev = last[1][1]
  elseif redis.call('EXISTS', stream) == 1 then
    local info = redis.call('XINFO', 'STREAM', stream)
    for j = 1, #info, 2 do
      if info[j] == 'last-generated-id' then prev = info[j+1] end
    end
  end
  local id
  if maxlen > 0 then
    id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'type', typ, 'ts', ts, 'data', data, 'prev', prev)
  else
    id = redis.call('XADD', stream, '*', 'type', typ, 'ts', ts, 'data', data, 'prev', prev)
  end
  if maxage > 0 then
    local ms = tonumber(string.match(id, '^(%d+)'))
    if ms > maxage then
      redis.call('XTRIM', stream, 'MINID', '~', string.format('%.0f', ms - maxage))
    end
    redis.call('PEXPIRE', stream, maxage)
  end
  local msg = 'hx1\n' .. id .. '\n' .. prev .. '\n' .. typ .. '\n' .. ts .. '\n' .. data
  if sharded == '1' then
    redis.call('SPUBLISH', channel, msg)
  else
    redis.call('PUBLISH', channel, msg)
  end
  if use_dedupe then
    redis.call('SET', dedupe, id, 'PX', dedupe_ttl)
  end
  return id, 1
end
`

// PublishArgc is the number of ARGV entries PublishParams returns and
// hx_publish consumes.
const PublishArgc = 9

// Script returns a Redis script whose source is the feed's Lua library (the
// functions hx_publish, documented above and in doc.go, and
// hx_publish_live, in live.go) followed by body. Other packages use it to
// make "check state, change it, append the event" (or "…, publish it
// live") one atomic script.
func Script(body string) *redis.Script { return redis.NewScript(luaLib + liveLua + body) }

var publishScript = Script(`
local id, fresh = hx_publish(KEYS[1], KEYS[2], ARGV, 1)
return {id, fresh}
`)

// PublishParams returns the KEYS (2) and ARGV (PublishArgc) for hx_publish in
// a script made with Script. Append them to the script's own keys and args
// and pass their positions to hx_publish. With Config.ArchiveMarks it marks
// the topic in the archive's dirty-topic index first (under ctx): run the
// script right after it, within Config.ArchiveGrace.
func (b *Publisher) PublishParams(ctx context.Context, p feed.Publication) (keys []string, args []any, err error) {
	keys, args, err = b.publishParams(p)
	if err != nil {
		return nil, nil, err
	}
	if err := b.mark(ctx, p.Topic); err != nil {
		return nil, nil, err
	}
	return keys, args, nil
}

// publishParams is PublishParams without the mark.
func (b *Publisher) publishParams(p feed.Publication) (keys []string, args []any, err error) {
	data, err := feed.CheckEvent(p.Topic, p.Type, p.Data)
	if err != nil {
		return nil, nil, err
	}
	ts := p.TS
	if ts.IsZero() {
		ts = time.Now()
	}
	// Microseconds: what the archive keeps (ts_us), so an event served
	// from the archive is the same to the byte as it was live.
	ts = ts.Truncate(time.Microsecond)
	stream := feed.StreamKey(b.cfg.Prefix, p.Topic)
	dedupe, useDedupe := stream, "0" // same slot placeholder when unused
	if p.Key != "" {
		dedupe, useDedupe = feed.DedupeKey(b.cfg.Prefix, p.Topic, p.Key), "1"
	}
	sharded := "0"
	if b.sharded {
		sharded = "1"
	}
	maxAge := int64(0)
	if b.cfg.MaxAge > 0 {
		maxAge = b.cfg.MaxAge.Milliseconds()
	}
	maxLen := max(b.cfg.MaxLen, 0)
	args = []any{
		feed.Channel(b.cfg.Prefix, p.Topic), sharded, strconv.FormatInt(maxLen, 10), strconv.FormatInt(maxAge, 10),
		useDedupe, strconv.FormatInt(b.cfg.DedupeTTL.Milliseconds(), 10),
		p.Type, ts.UTC().Format(time.RFC3339Nano), string(data),
	}
	return []string{stream, dedupe}, args, nil
}
