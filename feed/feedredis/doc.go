// Package feedredis is hextrack's feeds on Redis (the types are package
// feed's): one Redis Stream per topic for durable events, live fan-out over
// Redis pub/sub (one subscription per topic per node, sharded pub/sub under
// Redis Cluster), the node-local hub that fans each message out to many
// connections, resume, the position check, the Lua publish library that
// domain scripts embed (Script, hx_publish, hx_publish_live), and the
// go-redis UnavailableHook.
//
// It imports package feed and no other hextrack package. cmd builds one
// Broker per node and passes it to the consumers, which declare the
// interfaces they need (api and api/sse through a small adapter in cmd,
// as Subscribe returns the concrete *Subscription).
//
// Broker is three jobs: it embeds a Publisher (Publish, PublishLive,
// PublishSeq, PublishParams, LiveParams) and a Reader (Position, Read), and
// adds the hub's: Subscribe and Wait, Run and Close.
//
// # Publishing
//
// Publish is one Lua script: optional idempotency check (feed.Publication.Key;
// the same key returns the first ID and publishes nothing), XADD with MAXLEN ~
// (Config.MaxLen), XTRIM MINID ~ now-MaxAge, PEXPIRE MaxAge, then PUBLISH (or
// SPUBLISH on a *redis.ClusterClient). Either all of it happens or none.
//
// To make a domain change and its event atomic, build a script with Script:
//
//	var accept = feedredis.Script(`
//	  local st = redis.call('HGET', KEYS[1], 'status')
//	  if st ~= ARGV[1] then return {'conflict', st} end
//	  local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
//	  redis.call('HSET', KEYS[1], 'status', ARGV[2])
//	  local id, fresh = hx_publish(KEYS[2], KEYS[3], ARGV, 3)
//	  return {'ok', id}`)
//
//	fkeys, fargs, err := broker.PublishParams(feed.Publication{Topic: "trip:" + id, Type: "trip.status", Data: data, Key: key})
//	res, err := accept.Run(ctx, rdb, append([]string{"trip:{" + id + "}"}, fkeys...), append([]any{from, to}, fargs...)...).Result()
//
// hx_publish(stream_key, dedupe_key, argv, i [, data]) takes the two keys
// from PublishParams and the PublishArgc arguments starting at argv[i]; the
// optional data string replaces the payload (valid JSON, e.g. built in Lua
// to carry the new version). It returns the event ID and 1, or the first ID
// and 0 for a repeated idempotency key (nothing written then). All keys of
// the script must share one hash tag.
//
// # Subscribing and resume
//
// Subscribe(ctx, topic, lastID) implements the resume algorithm: join the
// topic's live fan-out first (buffering), wait until Redis confirms the
// subscription, read the stream after lastID in chunks (XRANGE; continuity
// is proven because every entry stores its predecessor's ID, so "the first
// entry after lastID follows lastID" is checked, not assumed), deliver the missed
// events in order, then the buffered and later live events, dropping any
// duplicate or older ID. Each live durable message carries its predecessor's
// ID; one that does not directly follow the last delivered event (a lost
// pub/sub message) makes the subscription re-read the stream from its last
// ID instead of skipping ahead. A lost message that no later one follows
// (often a trip's last: trip.completed, a payment result) is found by the
// position check below.
//
// Items are events or a Reset (see package feed). A Reset is delivered when
// lastID is older than the retained stream, unknown, malformed or in the
// future, or when a recovery finds its last ID trimmed. lastID "" is a fresh
// connect: no history, Position() is the stream position to send with the
// initial snapshot.
//
// Each subscription's queue holds Config.BufferSize items: a channel of a
// few items plus an overflow slice allocated only while a burst is queued
// (moved into the channel by a goroutine that exits once it is empty), so
// an idle subscriber costs a few hundred bytes, not BufferSize items. While
// live, the hub offers messages without blocking; a full queue closes C
// with feed.ErrSlowConsumer (the client resumes by ID; C still yields what was
// queued first). Catch-up reads wait for the consumer instead (they only
// hold that subscription's goroutine). Publishers never wait for
// subscribers.
//
// # Connections
//
// On a standalone or Sentinel Redis a node holds one pub/sub connection for
// all its topics. Under Cluster a sharded subscription must live on the
// slot's owner, so a node holds one connection per hash slot in use (each
// trip is its own slot: at most one connection per watched trip per node,
// bounded by 16,384 slots). When a slot migrates, Redis drops the shard
// channels, the probe (same slot) stops arriving, and the connection is
// re-made on the new owner. Grouping slots per master would need fewer
// connections; it is not done yet.
//
// # Liveness
//
// Each pub/sub connection (one per node; one per hash slot under Cluster)
// carries a probe channel "<prefix>feed:probe:{tag}:<node>". Every ProbeInterval the
// node publishes a probe; one not received back within ProbeTimeout means the
// subscription is dead or silently stalled: the connection is closed and
// replaced, every topic is subscribed again, and every local subscriber
// re-reads the stream from its last delivered ID once the new subscription
// is confirmed. A receive error (e.g. CLIENT KILL TYPE pubsub) does the same
// at once.
//
// A connection that cannot be re-established for Config.DownAfter (default
// 3s: the node is cut off from Redis) ends the subscriptions of its topics
// with feed.ErrUnavailable, and Subscribe on it fails at once with it
// until it is back: the clients reconnect through the load balancer to a
// node that reaches Redis and resume there by ID, instead of waiting in
// silence on this one. When Redis is down for every node they get 503s
// until it returns.
//
// # Position check
//
// A broken chain is noticed only when the topic's next message arrives, and
// the probe covers a dead connection, not one missing message. So every
// Config.PositionCheck/2 (default 2s; HEXTRACK_FEED_POSITION_CHECK in cmd)
// each node reads the last ID of every stream it has local listeners on, in
// one pipeline (XREVRANGE key + - COUNT 1 per topic; under Cluster go-redis
// sends one pipeline per master, each key to its slot's owner), and compares
// it with what each listener has delivered. A live subscription that has
// not delivered the ID read one tick earlier goes back to catching up, as on
// a broken chain; a long-poll waiter (trip long-poll, the driver's REST
// command channel) is woken to read again; the driver WebSocket is a
// Subscription. Comparing with the previous tick's reading gives a notice
// in flight half a period to arrive, so normal traffic causes no re-read,
// and a lost notice reaches its listeners within about one period of its
// append, whether or not another event follows. Cost per node: one
// pipelined read of one entry per watched topic per half period; a topic
// whose stream is unchanged costs nothing more. A subscription that is
// catching up is left alone (it is reading the stream already).
//
// # Reading and long-polling
//
// Read(ctx, topic, afterID, limit) returns a chunk of history and the next
// cursor, with feed.ErrTrimmed / ErrUnknownID / ErrInvalidID distinguishable (the
// api maps the first two to 410 + snapshot, the last to 400). Wait blocks up
// to a duration for events after an ID, woken by the hub.
//
// # Metrics
//
// Registered on Config.Registerer: hextrack_feed_delivery_lag_seconds
// (envelope ts → arrival at this node's hub), hextrack_feed_subscribers,
// hextrack_feed_slow_consumer_drops_total, hextrack_feed_resubscribes_total,
// hextrack_feed_recoveries_total, hextrack_feed_resets_total,
// hextrack_feed_published_total, and hextrack_feed_catchups_total{trigger}:
// listeners sent back to the stream by the position check
// ("position_check"), by a broken chain ("broken_chain") or by a new pub/sub
// connection ("resubscribe"). Each node exports its own (per-node series
// come from the scrape's instance label).
//
// # Archive marks
//
// With Config.ArchiveMarks, every durable publish (Publish, and
// PublishParams for a domain script) first adds its topic to a shard of the
// archive's dirty-topic index (DirtyKey: ArchiveShards sorted sets, each
// with its own hash tag, score = Redis time + ArchiveGrace, only raised).
// The index is a superset of the topics with unarchived events; the archive
// pipeline (archive/archiveredis) drains it and keeps its cursor per topic
// beside the stream (ArchivedKey). A mark that fails fails the publish.
//
// # Lifecycle
//
// New(rdb, cfg) returns a Broker; goroutines start with the first
// subscription. Run(ctx) blocks until ctx is done and then closes; Close ends
// every subscription with feed.ErrClosed and stops the pub/sub connections. The
// embedded miniredis works for everything but sharded pub/sub.
package feedredis
