package feed_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hextrack/hextrack/feed"
)

func TestKeys(t *testing.T) {
	tests := []struct {
		topic, stream, channel, tag string
	}{
		{"trip:t_123", "feed:trip:{t_123}", "feed:trip:{t_123}:live", "t_123"},
		{"driver:d1", "feed:driver:{d1}", "feed:driver:{d1}:live", "d1"},
		{"ops", "feed:{ops}", "feed:{ops}:live", "ops"},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			if got := feed.StreamKey("", tt.topic); got != tt.stream {
				t.Errorf("StreamKey = %q, want %q", got, tt.stream)
			}
			if got := feed.Channel("", tt.topic); got != tt.channel {
				t.Errorf("Channel = %q, want %q", got, tt.channel)
			}
			if got, _ := feed.HashTag(tt.topic); got != tt.tag {
				t.Errorf("HashTag = %q, want %q", got, tt.tag)
			}
			dk := feed.DedupeKey("", tt.topic, "some client key")
			if dk[:len(tt.stream)] != tt.stream || dk == feed.DedupeKey("", tt.topic, "other") {
				t.Errorf("DedupeKey = %q", dk)
			}
		})
	}
}

// TestKeysPrefixed: the deployment's key prefix starts every key and
// channel, ahead of the hash tag.
func TestKeysPrefixed(t *testing.T) {
	const p = "hx7:"
	if got, want := feed.StreamKey(p, "trip:t_1"), "hx7:feed:trip:{t_1}"; got != want {
		t.Errorf("StreamKey = %q, want %q", got, want)
	}
	if got, want := feed.Channel(p, "ops"), "hx7:feed:{ops}:live"; got != want {
		t.Errorf("Channel = %q, want %q", got, want)
	}
	if dk := feed.DedupeKey(p, "trip:t_1", "k"); !strings.HasPrefix(dk, "hx7:feed:trip:{t_1}:dedupe:") {
		t.Errorf("DedupeKey = %q", dk)
	}
}

func TestParseTopicInvalid(t *testing.T) {
	for _, topic := range []string{"", ":", "trip:", ":x", "trip:a b", "trip:{x}", "a:b:c:{", "trip:\n", "x\x00", "ops:x:y:z{"} {
		t.Run(topic, func(t *testing.T) {
			if _, _, err := feed.ParseTopic(topic); !errors.Is(err, feed.ErrInvalidTopic) {
				t.Fatalf("ParseTopic(%q) err = %v", topic, err)
			}
		})
	}
}
