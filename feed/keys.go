package feed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Key naming. Every key and channel of a topic starts with the
// deployment's key prefix (HEXTRACK_KEY_PREFIX, "" by default; it must not
// contain braces) and carries the same Redis Cluster hash tag, so one Lua script may touch all of them (and the domain
// keys that share the tag, e.g. rider's trip hash "trip:{<id>}"):
//
//	topic "trip:t_123"  stream "<prefix>feed:trip:{t_123}"  channel "<prefix>feed:trip:{t_123}:live"
//	topic "driver:d1"   stream "<prefix>feed:driver:{d1}"   channel "<prefix>feed:driver:{d1}:live"
//	topic "ops"         stream "<prefix>feed:{ops}"         channel "<prefix>feed:{ops}:live"
//
// A topic is "<kind>:<id>" or a bare "<name>"; kind, id and name are 1–128
// printable ASCII characters without spaces, braces or further colons in the
// kind/name.

const maxTopicPart = 128

// ParseTopic splits and validates a topic. kind is "" for a bare topic
// (tag is then the name).
func ParseTopic(topic string) (kind, tag string, err error) {
	kind, tag, hasKind := strings.Cut(topic, ":")
	if !hasKind {
		kind, tag = "", topic
	} else if !validPart(kind) || strings.Contains(kind, ":") {
		return "", "", fmt.Errorf("%w: %q", ErrInvalidTopic, clip(topic))
	}
	if !validPart(tag) {
		return "", "", fmt.Errorf("%w: %q", ErrInvalidTopic, clip(topic))
	}
	if !hasKind && strings.Contains(tag, ":") {
		return "", "", fmt.Errorf("%w: %q", ErrInvalidTopic, clip(topic))
	}
	return kind, tag, nil
}

func validPart(s string) bool {
	if s == "" || len(s) > maxTopicPart {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '{' || c == '}' {
			return false
		}
	}
	return true
}

// StreamKey returns the Redis Stream key holding topic's durable events
// under the key prefix. It panics on an invalid topic; use ParseTopic first
// for untrusted input.
func StreamKey(prefix, topic string) string {
	kind, tag, err := ParseTopic(topic)
	if err != nil {
		panic(err)
	}
	if kind == "" {
		return prefix + "feed:{" + tag + "}"
	}
	return prefix + "feed:" + kind + ":{" + tag + "}"
}

// Channel returns the pub/sub channel (a shard channel under Cluster) that
// carries topic's live fan-out. It panics on an invalid topic.
func Channel(prefix, topic string) string { return StreamKey(prefix, topic) + ":live" }

// DedupeKey returns the key that remembers the ID assigned to a publish with
// idempotency key idem (hashed, so any client-supplied string is safe). It
// shares the topic's hash tag. It panics on an invalid topic.
func DedupeKey(prefix, topic, idem string) string {
	sum := sha256.Sum256([]byte(idem))
	return StreamKey(prefix, topic) + ":dedupe:" + hex.EncodeToString(sum[:16])
}

// HashTag returns the Cluster hash tag of topic's keys (the id part, or the
// bare name), e.g. "t_123" for "trip:t_123".
func HashTag(topic string) (string, error) {
	_, tag, err := ParseTopic(topic)
	return tag, err
}
