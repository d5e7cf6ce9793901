package faults

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ID is a stream ID ("<ms>-<seq>"), comparable by value.
type ID struct{ MS, Seq uint64 }

// ParseID parses "ms-seq"; "" and "0" are the zero ID.
func ParseID(s string) (ID, bool) {
	if s == "" || s == "0" {
		return ID{}, true
	}
	a, b, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(a, 10, 64)
	var seq uint64
	var err2 error
	if ok {
		seq, err2 = strconv.ParseUint(b, 10, 64)
	}
	if err1 != nil || err2 != nil {
		return ID{}, false
	}
	return ID{ms, seq}, true
}

// Less orders IDs as the stream does.
func (a ID) Less(b ID) bool { return a.MS < b.MS || (a.MS == b.MS && a.Seq < b.Seq) }

func (a ID) String() string { return fmt.Sprintf("%d-%d", a.MS, a.Seq) }

// Checker compares what the clients received with the streams, by event
// ID, per topic. A client tells it where it started (Start: the position of
// its first snapshot; every event after it must arrive), each durable event
// it received (Observe), and each reset the server sent (Reset: events up
// to that position were explicitly replaced by a snapshot, so they are
// excused, not lost). Acked records events whose publish the server
// acknowledged: they must be in the stream. Verify then counts, against the
// stream's IDs: lost (after the start, not excused, never received),
// duplicated (each delivery of an ID beyond the first), out of order, and
// acknowledged events missing from the stream.
type Checker struct {
	mu     sync.Mutex
	topics map[string]*topicLog
}

type topicLog struct {
	started  bool
	start    ID
	seen     map[ID]int
	last     ID
	excused  ID
	received int
	dups     int
	ooo      int
	resets   int
	acked    []ID
}

// NewChecker returns an empty checker.
func NewChecker() *Checker { return &Checker{topics: map[string]*topicLog{}} }

func (c *Checker) topic(t string) *topicLog {
	l := c.topics[t]
	if l == nil {
		l = &topicLog{seen: map[ID]int{}}
		c.topics[t] = l
	}
	return l
}

// Start records that the subscriber of topic expects every event after
// position. Only the first call counts.
func (c *Checker) Start(topic, position string) {
	id, _ := ParseID(position)
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.topic(topic)
	if l.started {
		return
	}
	l.started, l.start = true, id
	if l.last.Less(id) {
		l.last = id
	}
}

// Observe records one delivery of a durable event.
func (c *Checker) Observe(topic, id string) {
	v, ok := ParseID(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.topic(topic)
	l.received++
	if !ok {
		return
	}
	l.seen[v]++
	if l.seen[v] > 1 {
		l.dups++
		return
	}
	if v.Less(l.last) {
		l.ooo++
	} else {
		l.last = v
	}
}

// Reset records a reset (fresh snapshot) at position.
func (c *Checker) Reset(topic, position string) {
	id, _ := ParseID(position)
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.topic(topic)
	l.resets++
	if l.excused.Less(id) {
		l.excused = id
	}
	if l.last.Less(id) {
		l.last = id
	}
}

// Acked records that the server acknowledged publishing event id.
func (c *Checker) Acked(topic, id string) {
	v, ok := ParseID(id)
	if !ok {
		return
	}
	c.mu.Lock()
	c.topic(topic).acked = append(c.topic(topic).acked, v)
	c.mu.Unlock()
}

// Last is the highest ID received (or reset to) on topic.
func (c *Checker) Last(topic string) ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.topic(topic).last
}

// Topics lists the topics seen, sorted.
func (c *Checker) Topics() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ts []string
	for t := range c.topics {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// Result is the outcome of Verify, summed over topics.
type Result struct {
	Topics      int
	Received    int // durable deliveries
	Lost        int
	Duplicated  int
	OutOfOrder  int
	Resets      int
	AckedMissed int // acknowledged publishes missing from the stream
	Examples    []string
}

// Verify checks topic against truth, the IDs in its stream (all of it: the
// subscriber must have followed the topic to its end), and adds to r.
func (c *Checker) Verify(topic string, truth []string, r *Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.topic(topic)
	r.Topics++
	r.Received += l.received
	r.Duplicated += l.dups
	r.OutOfOrder += l.ooo
	r.Resets += l.resets
	inStream := make(map[ID]bool, len(truth))
	for _, s := range truth {
		v, ok := ParseID(s)
		if !ok {
			continue
		}
		inStream[v] = true
		if !l.start.Less(v) || !l.excused.Less(v) || l.seen[v] > 0 {
			continue
		}
		r.Lost++
		if len(r.Examples) < 5 {
			r.Examples = append(r.Examples, "lost "+topic+" "+s)
		}
	}
	for _, v := range l.acked {
		if !inStream[v] {
			r.AckedMissed++
			if len(r.Examples) < 5 {
				r.Examples = append(r.Examples, "acked but not in the stream "+topic+" "+v.String())
			}
		}
	}
	if l.dups > 0 && len(r.Examples) < 5 {
		for v, n := range l.seen {
			if n > 1 {
				r.Examples = append(r.Examples, fmt.Sprintf("dup %s %s x%d", topic, v, n))
				break
			}
		}
	}
}
