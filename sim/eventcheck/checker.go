package eventcheck

import (
	"strconv"
	"strings"
	"sync"
)

// Checker finds lost, duplicated and out-of-order durable events by ID.
//
// A subscriber tells it where it started (Start: the feed position of its
// first snapshot; it expects every event after that), every durable event
// it receives (Observe), and every reset the server sent (Reset: events up
// to that position were explicitly given up, replaced by a snapshot, so
// they are excused, not lost). Verify then compares what was received with
// the authoritative list of event IDs read back from the server's history:
//
//   - lost: an event after the start, not excused by a reset, never
//     received — but only up to the horizon: for a topic still being
//     watched, events after the last one received may simply be in flight,
//     so the horizon is the last received ID unless Finish said the
//     subscriber saw the topic to its end (then every event counts);
//   - duplicated: each delivery of an ID beyond the first;
//   - out of order: a delivery whose ID is below one delivered before.
//
// Safe for concurrent use; topics are independent.
type Checker struct {
	mu     sync.Mutex
	topics map[string]*topicLog
	totals CheckTotals
}

type topicLog struct {
	start    ID
	seen     map[ID]int
	last     ID // highest received
	excused  ID // highest reset position
	finished bool
	dups     int64
	ooo      int64
	resets   int64
	verified bool
	lost     int64
}

// CheckTotals sums the results over all topics (lost only over verified
// topics).
type CheckTotals struct {
	Received   int64
	Lost       int64
	Duplicated int64
	OutOfOrder int64
	Resets     int64
	Checked    int64 // topics verified against the server's history
	Unverified int64 // topics observed but never verified
}

// ID is a parsed Redis Stream ID ("<ms>-<seq>"), comparable by value.
type ID struct{ MS, Seq uint64 }

// ParseID parses "ms-seq" (or a bare "ms"); ok is false for anything else.
// "" and "0" parse as the zero ID (the beginning of a stream).
func ParseID(s string) (ID, bool) {
	if s == "" || s == "0" || s == "0-0" {
		return ID{}, true
	}
	a, b, found := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return ID{}, false
	}
	var seq uint64
	if found {
		if seq, err = strconv.ParseUint(b, 10, 64); err != nil {
			return ID{}, false
		}
	}
	return ID{ms, seq}, true
}

// Less orders IDs as the stream does.
func (a ID) Less(b ID) bool { return a.MS < b.MS || (a.MS == b.MS && a.Seq < b.Seq) }

func (a ID) String() string {
	return strconv.FormatUint(a.MS, 10) + "-" + strconv.FormatUint(a.Seq, 10)
}

func (c *Checker) topic(t string) *topicLog {
	if c.topics == nil {
		c.topics = map[string]*topicLog{}
	}
	l := c.topics[t]
	if l == nil {
		l = &topicLog{seen: map[ID]int{}}
		c.topics[t] = l
	}
	return l
}

// Start records that a subscriber of topic expects every event after
// position (its first snapshot's feed_position; "" for the whole stream).
// Only the first call per topic counts.
func (c *Checker) Start(topic, position string) {
	id, _ := ParseID(position)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.topics[topic]; ok {
		return
	}
	l := c.topic(topic)
	l.start, l.last = id, id
}

// Observe records a delivery of durable event id on topic. It reports
// whether the delivery was a duplicate.
func (c *Checker) Observe(topic, id string) (dup bool) {
	v, ok := ParseID(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.totals.Received++
	l := c.topic(topic)
	if !ok {
		return false
	}
	l.seen[v]++
	if l.seen[v] > 1 {
		l.dups++
		c.totals.Duplicated++
		return true
	}
	if v.Less(l.last) {
		l.ooo++
		c.totals.OutOfOrder++
	} else {
		l.last = v
	}
	return false
}

// Reset records that the server told the subscriber of topic that
// continuity was lost and gave a fresh snapshot at position.
func (c *Checker) Reset(topic, position string) {
	id, _ := ParseID(position)
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.topic(topic)
	l.resets++
	c.totals.Resets++
	if l.excused.Less(id) {
		l.excused = id
	}
	if l.last.Less(id) {
		l.last = id
	}
}

// Finish records that the subscriber followed topic to its end (e.g. saw
// the trip's terminal status and lingered): every event in its history
// must then have been received.
func (c *Checker) Finish(topic string) {
	c.mu.Lock()
	c.topic(topic).finished = true
	c.mu.Unlock()
}

// TopicResult is the outcome of verifying one topic.
type TopicResult struct {
	Topic      string
	Lost       []string
	Duplicated int64
	OutOfOrder int64
}

// Verify compares the deliveries on topic with truth, the IDs of the
// topic's events in the server's history (any order). It may be called
// again with a longer history; the totals keep the latest result.
func (c *Checker) Verify(topic string, truth []string) TopicResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.topic(topic)
	res := TopicResult{Topic: topic, Duplicated: l.dups, OutOfOrder: l.ooo}
	for _, s := range truth {
		v, ok := ParseID(s)
		if !ok || !l.start.Less(v) || !l.excused.Less(v) || l.seen[v] > 0 {
			continue
		}
		if !l.finished && l.last.Less(v) {
			continue // after the last delivery of a live topic: maybe in flight
		}
		res.Lost = append(res.Lost, s)
	}
	if l.verified {
		c.totals.Lost -= l.lost
	} else {
		c.totals.Checked++
	}
	l.verified = true
	l.lost = int64(len(res.Lost))
	c.totals.Lost += l.lost
	return res
}

// Topics lists the topics seen so far.
func (c *Checker) Topics() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.topics))
	for t := range c.topics {
		out = append(out, t)
	}
	return out
}

// Totals sums the results so far.
func (c *Checker) Totals() CheckTotals {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.totals
	for _, l := range c.topics {
		if !l.verified {
			t.Unverified++
		}
	}
	return t
}
