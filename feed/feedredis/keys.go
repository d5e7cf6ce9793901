package feedredis

import (
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/hextrack/hextrack/feed"
)

// probeChannel is the per-node (per-connection under Cluster) liveness
// channel. tag puts it in the slot of the connection's topics.
func probeChannel(prefix, tag, node string) string {
	return prefix + "feed:probe:{" + tag + "}:" + node
}

// slot computes the Redis Cluster slot of key (CRC16/XMODEM of the hash tag
// or the whole key, mod 16384), used to group topics per sharded
// subscription connection.
func slot(key string) int {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// ArchiveShards is how many shards the archive's dirty-topic index has.
// Each shard is one sorted set with its own hash tag, so under Cluster the
// index spreads over several slots and each shard is one consumer's lease.
const ArchiveShards = 16

// DirtyShard is the shard of the dirty-topic index that holds topic.
func DirtyShard(topic string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(topic))
	return int(h.Sum32() % ArchiveShards)
}

// DirtyKey is the dirty-topic index's sorted set of shard (member: a
// topic; score: the Redis time in ms until which a publish announced by the
// mark may still land, see Config.ArchiveMarks). prefix is
// Config.Prefix.
func DirtyKey(prefix string, shard int) string {
	return prefix + "archive:dirty:{s" + strconv.Itoa(shard) + "}"
}

// ArchivedKey is where the archive's consumer keeps the ID of the last
// event of topic it archived. It shares the topic's hash tag, so one script
// can read it with the stream. prefix is Config.Prefix.
func ArchivedKey(prefix, topic string) string { return feed.StreamKey(prefix, topic) + ":archived" }
