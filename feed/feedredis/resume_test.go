package feedredis_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// publisher publishes durable events until stopped, recording their IDs in
// publish order.
type publisher struct {
	mu   sync.Mutex
	ids  []string
	stop chan struct{}
	done chan struct{}
	err  error
}

func startPublisher(tb testing.TB, b *feedredis.Broker, topic string, every time.Duration) *publisher {
	p := &publisher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			id, err := b.Publish(context.Background(), feed.Publication{Topic: topic, Type: "trip.eta", Data: seqData(i)})
			if err != nil {
				p.err = err
				return
			}
			p.mu.Lock()
			p.ids = append(p.ids, id)
			p.mu.Unlock()
			time.Sleep(every)
		}
	}()
	return p
}

func (p *publisher) snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ids...)
}

func (p *publisher) finish(tb testing.TB) []string {
	tb.Helper()
	close(p.stop)
	<-p.done
	if p.err != nil {
		tb.Fatalf("publisher: %v", p.err)
	}
	return p.snapshot()
}

// checkPrefix: got must equal the published sequence so far (the publisher
// may not have recorded the newest IDs yet, so compare the overlap).
func checkPrefix(tb testing.TB, round int, got, published []string) {
	tb.Helper()
	n := min(len(got), len(published))
	for i := range n {
		if got[i] != published[i] {
			tb.Fatalf("round %d: event %d is %s, published %s (gap or duplicate)", round, i, got[i], published[i])
		}
	}
	for i := n; i < len(got); i++ {
		if c, _ := feed.CompareIDs(got[i-1], got[i]); i > 0 && c >= 0 {
			tb.Fatalf("round %d: out of order %s then %s", round, got[i-1], got[i])
		}
	}
}

// 200 rounds of disconnecting a subscriber at random points (before it
// reads anything, during catch-up, while live, by ctx or Close) while a
// publisher keeps publishing; after every resume the subscriber has exactly
// the published events: no gap, no duplicate, in order.
func TestResumeTorture(t *testing.T) {
	rdb := MustOpenRedis(t)
	cfg := feedredis.Config{MaxLen: 1_000_000, ReadChunk: 16, BufferSize: 64}
	pubB, _ := MustOpenBroker(t, rdb, cfg)
	subB, _ := MustOpenBroker(t, MustOpenRedis(t), cfg)
	topic := newTopic(t, rdb)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	pub := startPublisher(t, pubB, topic, 300*time.Microsecond)
	var got []string
	last := "0-0"
	for round := range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		sub, err := subB.Subscribe(ctx, topic, last)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		mode := rng.IntN(4)
		want := rng.IntN(40)
		deadline := time.After(time.Duration(rng.IntN(3000)) * time.Microsecond)
	read:
		for n := 0; mode != 0 && n < want; n++ {
			select {
			case it, ok := <-sub.C():
				if !ok {
					t.Fatalf("round %d: closed: %v", round, sub.Err())
				}
				if it.Reset {
					t.Fatalf("round %d: unexpected reset at %s (last %s)", round, it.Position, last)
				}
				got = append(got, it.Event.ID)
				last = it.Event.ID
			case <-deadline:
				if mode == 3 {
					break read
				}
			}
		}
		if rng.IntN(2) == 0 {
			cancel()
		} else {
			sub.Close()
		}
		cancel()
		checkPrefix(t, round, got, pub.snapshot())
	}
	published := pub.finish(t)
	// Final resume: everything that is left, then nothing more.
	sub, err := subB.Subscribe(context.Background(), topic, last)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	rest := len(published) - len(got)
	if rest < 0 {
		t.Fatalf("received %d events, only %d published", len(got), len(published))
	}
	got = append(got, itemIDs(recvN(t, sub, rest, 10*time.Second))...)
	equalIDs(t, got, published)
	select {
	case it := <-sub.C():
		t.Fatalf("extra item after the last published event: %+v", it)
	case <-time.After(50 * time.Millisecond):
	}
	t.Logf("%d events published and received across 200 resumes", len(published))
}

// Resuming from an ID whose continuity can't be proven yields one Reset
// carrying the current position, then the events after it; continuity right
// at the trim boundary is proven and resumes normally.
func TestResumeReset(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{MaxLen: 10})
	topic := newTopic(t, rdb)
	ctx := context.Background()
	ids := publishN(t, b, topic, 450) // MAXLEN ~ trims whole 100-entry nodes
	info, err := rdb.XInfoStream(ctx, feed.StreamKey("", topic)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if info.Length >= 450 || info.Length < 10 {
		t.Fatalf("stream not trimmed as expected: length %d", info.Length)
	}
	last := ids[len(ids)-1]
	lastID := feed.MustParseID(last)
	retained := ids[len(ids)-int(info.Length):]
	boundary := ids[len(ids)-len(retained)-1] // the last trimmed event
	if retained[0] != info.FirstEntry.ID {
		t.Fatalf("retained starts at %s, stream at %s", retained[0], info.FirstEntry.ID)
	}
	between := feed.MustParseID(retained[0])
	between.Seq += 1_000_000 // inside the retained range, never issued

	tests := []struct {
		name    string
		after   string
		readErr error
	}{
		{"trimmed", ids[0], feed.ErrTrimmed},
		{"just before the boundary", ids[len(ids)-len(retained)-2], feed.ErrTrimmed},
		{"from the very beginning", "0-0", feed.ErrTrimmed},
		{"unknown", between.String(), feed.ErrUnknownID},
		{"future", feed.ID{Ms: lastID.Ms + 60_000}.String(), feed.ErrUnknownID},
		{"malformed", "1-2-3", feed.ErrInvalidID},
		{"huge", "99999999999999999999999999-0", feed.ErrInvalidID},
	}
	// First: the other cases publish, and more trimming could take the
	// boundary.
	t.Run("exactly at the trim boundary", func(t *testing.T) {
		evs, _, err := b.Read(ctx, topic, boundary, len(retained))
		if err != nil {
			t.Fatal(err)
		}
		equalIDs(t, eventIDs(evs), retained)
		sub, err := b.Subscribe(ctx, topic, boundary)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		equalIDs(t, itemIDs(recvN(t, sub, len(retained), 5*time.Second)), retained)
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := b.Read(ctx, topic, tt.after, 10); !errors.Is(err, tt.readErr) {
				t.Fatalf("Read err = %v, want %v", err, tt.readErr)
			}
			sub, err := b.Subscribe(ctx, topic, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			it := recvN(t, sub, 1, 5*time.Second)[0]
			pos, _ := b.Position(ctx, topic)
			if !it.Reset || it.Position != pos {
				t.Fatalf("first item = %+v, want a reset at %s", it, pos)
			}
			// After a reset, exactly the events after its position follow.
			next := publishN(t, b, topic, 2)
			equalIDs(t, itemIDs(recvN(t, sub, 2, 5*time.Second)), next)
		})
	}
	t.Run("stream expired and recreated", func(t *testing.T) {
		gone := newTopic(t, rdb)
		old := publishN(t, b, gone, 2)
		rdb.Del(ctx, feed.StreamKey("", gone))
		// A recreated stream restarts IDs from the clock; within the same
		// millisecond it could reissue an old ID (real expiry happens MaxAge
		// after the last event, so never in practice).
		time.Sleep(2 * time.Millisecond)
		publishN(t, b, gone, 1)
		if _, _, err := b.Read(ctx, gone, old[1], 10); !errors.Is(err, feed.ErrTrimmed) && !errors.Is(err, feed.ErrUnknownID) {
			t.Fatalf("Read from before the expiry: err = %v", err)
		}
	})
}

func eventIDs(evs []feed.Event) []string {
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

func TestMaxAge(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{MaxAge: 300 * time.Millisecond, MaxLen: -1})
	topic := newTopic(t, rdb)
	ctx := context.Background()
	publishN(t, b, topic, 250)
	if ttl := rdb.PTTL(ctx, feed.StreamKey("", topic)).Val(); ttl <= 0 || ttl > 300*time.Millisecond {
		t.Fatalf("stream ttl = %v, want (0, 300ms]", ttl)
	}
	time.Sleep(350 * time.Millisecond)
	publishN(t, b, topic, 1)
	if n := rdb.XLen(ctx, feed.StreamKey("", topic)).Val(); n > 100 {
		t.Fatalf("stream length %d after the old events aged out (approximate trim keeps < one node)", n)
	}
}

// The predecessor chain survives a stream emptied by trimming: the next
// entry's prev is the stream's last generated ID, so a client at that ID
// resumes without a reset and the live event needs no recovery read.
func TestContinuityAcrossEmptiedStream(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, reg := MustOpenBroker(t, rdb, feedredis.Config{})
	topic := newTopic(t, rdb)
	ctx := context.Background()
	old := publishN(t, b, topic, 2)
	if err := rdb.XTrimMaxLen(ctx, feed.StreamKey("", topic), 0).Err(); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(ctx, topic, old[1])
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	next := publishN(t, b, topic, 1)
	equalIDs(t, itemIDs(recvN(t, sub, 1, 5*time.Second)), next)
	evs, _, err := b.Read(ctx, topic, old[1], 10)
	if err != nil {
		t.Fatal(err)
	}
	equalIDs(t, eventIDs(evs), next)
	if _, _, err := b.Read(ctx, topic, old[0], 10); !errors.Is(err, feed.ErrTrimmed) {
		t.Fatalf("Read from a trimmed ID: err = %v", err)
	}
	if n := counter(t, reg, "hextrack_feed_resets_total"); n != 0 {
		t.Fatalf("resets = %v, want 0", n)
	}
}
