// Package feed is the domain of hextrack's ordered, resumable event feeds:
// the Event envelope and the Item a subscription delivers, event IDs,
// topics and the names of their keys, the Publication to publish and its
// validation (CheckEvent), and the sentinel errors every layer checks
// (ErrUnavailable, ErrTrimmed, ErrUnknownID, ErrSlowConsumer, ErrClosed,
// ErrInvalidID, ErrInvalidTopic, ErrInvalidEvent).
//
// It has no Redis. The Redis implementation (one Redis Stream per topic,
// live fan-out over pub/sub with the node hub, resume, the position check,
// the Lua publish library and the UnavailableHook) is feed/feedredis.
// Consumers (api, api/sse, api/driverws, dispatch, trip, payment) declare
// the small interfaces they need over these types; cmd passes them a
// feedredis.Broker.
//
// It must not import any other hextrack package: they import feed.
// Transports (SSE, long-poll, WS) live in api and only translate Items and
// Events to frames.
//
// # Topics and keys
//
// Topics are "trip:<id>", "driver:<id>" and "ops". Every key of a topic
// starts with the deployment's key prefix (HEXTRACK_KEY_PREFIX, shown here
// empty) and carries the same Cluster hash tag, shared with the domain's
// own keys:
//
//	topic        stream (StreamKey)       channel (Channel)             dedupe (DedupeKey)
//	trip:t_123   feed:trip:{t_123}        feed:trip:{t_123}:live        feed:trip:{t_123}:dedupe:<hash>
//	driver:d1    feed:driver:{d1}         feed:driver:{d1}:live         feed:driver:{d1}:dedupe:<hash>
//	ops          feed:{ops}               feed:{ops}:live               feed:{ops}:dedupe:<hash>
//
// so rider's trip hash "trip:{t_123}" and the trip's feed are in one slot and
// one script may change both.
//
// # Events
//
// Event is the envelope every transport sends:
//
//	{"id":"1732521600000-0","type":"trip.status","topic":"trip:t_123","ts":"…RFC3339, to the µs…","data":{…}}
//
// Durable events (Publish) are appended to the stream; their ID is the stream
// ID, which orders them. Live-only messages (PublishLive, e.g. trip.location,
// latest-wins) only go to current subscribers and have no ID. IDs from
// clients are untrusted: parse them with ParseID; compare with ID.Compare or
// CompareIDs.
//
// Items are events or a Reset. A Reset is delivered when the client's last
// ID is older than the retained stream, unknown, malformed or in the future,
// or when a recovery finds its last ID trimmed: it carries the current
// stream position; the api layer then takes a snapshot and sends the
// `reset` event, and the items that follow are exactly the events after
// that position. There is never a silent gap.
package feed
