package feedredis

import "strings"

// probeChannel is the per-node (per-connection under Cluster) liveness
// channel. tag puts it in the slot of the connection's topics.
func probeChannel(tag, node string) string { return "feed:probe:{" + tag + "}:" + node }

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
