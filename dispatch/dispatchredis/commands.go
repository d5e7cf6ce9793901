package dispatchredis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
)

// CommandFeed is the feed the driver command channel runs on (feedredis.Broker).
type CommandFeed interface {
	Publish(ctx context.Context, p feed.Publication) (string, error)
	PublishLive(ctx context.Context, topic, typ string, data json.RawMessage) error
	Subscribe(ctx context.Context, topic, lastID string) (*feedredis.Subscription, error)
	Wait(ctx context.Context, topic, afterID string, limit int, d time.Duration) ([]feed.Event, string, error)
	Position(ctx context.Context, topic string) (string, error)
}

var _ CommandFeed = (*feedredis.Broker)(nil)

// Commands is the command channel to drivers: durable commands on each
// driver's feed, the driver's acknowledged position (shared by the
// WebSocket and the REST transports), and which connection of a driver is
// current. Keys share the driver's hash tag: "<prefix>drv:{<id>}:cmdack"
// and "<prefix>drv:{<id>}:session".
type Commands struct {
	rdb    redis.UniversalClient
	feed   CommandFeed
	prefix string
	ttl    time.Duration
}

// NewCommands returns the command channel over f, storing acks in rdb
// under prefix. Acks are kept for 7 days after the last one.
func NewCommands(rdb redis.UniversalClient, f CommandFeed, prefix string) *Commands {
	return &Commands{rdb: rdb, feed: f, prefix: prefix, ttl: 7 * 24 * time.Hour}
}

func ackKey(prefix, driverID string) string     { return prefix + "drv:{" + driverID + "}:cmdack" }
func sessionKey(prefix, driverID string) string { return prefix + "drv:{" + driverID + "}:session" }

// Send appends a durable command to a driver's feed. A non-empty key makes
// it idempotent: the same key gives the first command's ID and sends
// nothing more.
func (c *Commands) Send(ctx context.Context, driverID, typ string, data any, key string) (string, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("dispatch: command %s: %w", typ, err)
	}
	return c.feed.Publish(ctx, feed.Publication{Topic: dispatch.DriverTopic(driverID), Type: typ, Data: b, Key: key})
}

// ackScript stores the highest acknowledged command ID (an ack of an older
// ID changes nothing) and returns the stored one.
//
// KEYS: ack key. ARGV: id, ttl s.
var ackScript = redis.NewScript(`
local function parse(id)
  local a, b = string.match(id or '', '^(%d+)-(%d+)$')
  return tonumber(a), tonumber(b)
end
local old = redis.call('GET', KEYS[1])
local nm, ns = parse(ARGV[1])
if old then
  local om, os = parse(old)
  if om and (om > nm or (om == nm and os >= ns)) then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    return old
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
`)

// Ack records that the driver handled every command up to and including id
// (acks are cumulative, like a cursor). It returns the stored position,
// which never moves back. id must be a command of the driver's feed (not
// after its last one): dispatch.ErrInvalid otherwise.
func (c *Commands) Ack(ctx context.Context, driverID, id string) (string, error) {
	cid, err := feed.ParseID(id)
	if err != nil {
		return "", fmt.Errorf("%w: command id must look like 1732521600000-0", dispatch.ErrInvalid)
	}
	pos, err := c.feed.Position(ctx, dispatch.DriverTopic(driverID))
	if err != nil {
		return "", err
	}
	if cid.Compare(feed.MustParseID(pos)) > 0 {
		return "", fmt.Errorf("%w: command %s was never sent to %s", dispatch.ErrInvalid, id, driverID)
	}
	v, err := ackScript.Run(ctx, c.rdb, []string{ackKey(c.prefix, driverID)}, cid.String(), int64(c.ttl/time.Second)).Text()
	if err != nil {
		return "", fmt.Errorf("dispatch: ack %s: %w", driverID, err)
	}
	return v, nil
}

// Acked returns the driver's acknowledged position, "" if it never acked.
func (c *Commands) Acked(ctx context.Context, driverID string) (string, error) {
	v, err := c.rdb.Get(ctx, ackKey(c.prefix, driverID)).Result()
	if err == redis.Nil {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("dispatch: acked %s: %w", driverID, err)
	}
	return v, nil
}

// ResumeFrom is where a driver's delivery starts: after the stored ack or
// after lastID, whichever is newer (a client's last_id counts as an ack of
// everything up to it; it is stored). With neither, "0-0": every retained
// command (a Reset if some were trimmed).
func (c *Commands) ResumeFrom(ctx context.Context, driverID, lastID string) (string, error) {
	acked, err := c.Acked(ctx, driverID)
	if err != nil {
		return "", err
	}
	if lastID != "" {
		if _, err := feed.ParseID(lastID); err != nil {
			return "", fmt.Errorf("%w: last_id must look like 1732521600000-0", dispatch.ErrInvalid)
		}
		if acked == "" || feed.MustParseID(lastID).Compare(feed.MustParseID(acked)) > 0 {
			if v, err := c.Ack(ctx, driverID, lastID); err == nil {
				acked = v
			} else {
				return "", err
			}
		}
	}
	if acked == "" {
		return "0-0", nil
	}
	return acked, nil
}

// Subscribe delivers the driver's commands after `after` (see
// feedredis.Broker.Subscribe), then live ones.
func (c *Commands) Subscribe(ctx context.Context, driverID, after string) (*feedredis.Subscription, error) {
	return c.feed.Subscribe(ctx, dispatch.DriverTopic(driverID), after)
}

// Poll returns up to limit commands after `after`, waiting up to wait for
// one to be sent when there is none (a long-poll).
func (c *Commands) Poll(ctx context.Context, driverID, after string, limit int, wait time.Duration) ([]feed.Event, string, error) {
	return c.feed.Wait(ctx, dispatch.DriverTopic(driverID), after, limit, wait)
}

// Position is the ID of the driver's latest command ("0-0" if none).
func (c *Commands) Position(ctx context.Context, driverID string) (string, error) {
	return c.feed.Position(ctx, dispatch.DriverTopic(driverID))
}

// TakeSession makes session the driver's current connection unless a newer
// one (sessions sort by start time) already is, and tells every older
// connection, on any node, to close (a live dispatch.CmdReplaced message). It
// returns the current session: session itself, or the newer one that won.
func (c *Commands) TakeSession(ctx context.Context, driverID, session string) (string, error) {
	cur, err := takeSessionScript.Run(ctx, c.rdb, []string{sessionKey(c.prefix, driverID)}, session, 86400).Text()
	if err != nil {
		return "", fmt.Errorf("dispatch: session %s: %w", driverID, err)
	}
	if cur != session {
		return cur, nil
	}
	b, _ := json.Marshal(map[string]string{"session": session})
	return cur, c.feed.PublishLive(ctx, dispatch.DriverTopic(driverID), dispatch.CmdReplaced, b)
}

// Suspended tells every open connection of the driver, on any node, that
// ops suspended it (a live dispatch.CmdSuspended message): they close. A
// lost message is caught by the connections' periodic check.
func (c *Commands) Suspended(ctx context.Context, driverID string) error {
	return c.feed.PublishLive(ctx, dispatch.DriverTopic(driverID), dispatch.CmdSuspended, json.RawMessage(`{}`))
}

var takeSessionScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur > ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]`)

// Session returns the driver's current connection ("" if none).
func (c *Commands) Session(ctx context.Context, driverID string) (string, error) {
	v, err := c.rdb.Get(ctx, sessionKey(c.prefix, driverID)).Result()
	if err == redis.Nil {
		return "", nil
	}
	return v, err
}

// EndSession forgets session if it is still the current one.
func (c *Commands) EndSession(ctx context.Context, driverID, session string) {
	_ = endSessionScript.Run(ctx, c.rdb, []string{sessionKey(c.prefix, driverID)}, session).Err()
}

var endSessionScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
