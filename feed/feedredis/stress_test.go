package feedredis_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// TestFanoutChurn is the bench fan-out's shape against real Redis, with the
// position check off so that only the pub/sub path and the prev chain
// deliver: two publishing nodes publish concurrently on every topic; on a
// third node, half the topics hold long-lived fresh subscribers (the bench's
// riders) while short subscriptions join and leave every topic (fresh or
// resumed), so topics are UNSUBSCRIBEd and SUBSCRIBEd again on the node's
// one pub/sub connection while the held topics' messages flow on it. Every
// session must deliver a contiguous run of its stream (no gap, duplicate or
// reordering), and every held subscriber the whole stream after its
// position, the last event included. It passes on the feed as it was at
// ac8726e too: the 4 events of issue 15 were not lost by the hub.
func TestFanoutChurn(t *testing.T) {
	rdb := MustOpenRedis(t)
	cfg := feedredis.Config{PositionCheck: -1, ReadChunk: 8}
	pubs := []*feedredis.Broker{}
	for range 2 {
		b, _ := MustOpenBroker(t, MustOpenRedis(t), cfg)
		pubs = append(pubs, b)
	}
	node, reg := MustOpenBroker(t, rdb, cfg)
	ctx := context.Background()

	const nTopics, held, perTopic = 8, 4, 120
	topics := make([]string, nTopics)
	for i := range topics {
		topics[i] = newTopic(t, rdb)
		publishN(t, pubs[0], topics[i], 1) // every stream exists
	}
	type holder struct {
		s   *feedredis.Subscription
		mu  sync.Mutex
		ids []string
	}
	var holders []*holder
	for i := range nTopics / 2 {
		for range held {
			s, err := node.Subscribe(ctx, topics[i], "")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			holders = append(holders, &holder{s: s})
		}
	}
	var hw sync.WaitGroup
	for _, h := range holders {
		hw.Go(func() {
			for it := range h.s.C() {
				if it.Reset {
					t.Errorf("%s: reset", h.s.Topic())
				}
				h.mu.Lock()
				h.ids = append(h.ids, it.Event.ID)
				h.mu.Unlock()
			}
		})
	}

	// Sessions of the churning subscribers, checked against the streams
	// at the end.
	type session struct {
		topic, start string
		ids          []string
	}
	var smu sync.Mutex
	var sessions []session
	stop := make(chan struct{})
	var churn sync.WaitGroup
	for w := range 6 {
		churn.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			last := map[string]string{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				topic := topics[rng.IntN(nTopics)]
				from := ""
				if rng.IntN(2) == 0 {
					from = last[topic]
				}
				sctx, cancel := context.WithTimeout(ctx, time.Duration(5+rng.IntN(40))*time.Millisecond)
				s, err := node.Subscribe(sctx, topic, from)
				if err != nil {
					cancel()
					continue // ctx ended before the subscription was confirmed
				}
				se := session{topic: topic, start: s.Position()}
				for it := range s.C() {
					if it.Reset {
						t.Errorf("%s: reset from %q", topic, from)
						break
					}
					se.ids = append(se.ids, it.Event.ID)
				}
				cancel()
				if n := len(se.ids); n > 0 {
					last[topic] = se.ids[n-1]
				}
				smu.Lock()
				sessions = append(sessions, se)
				smu.Unlock()
			}
		})
	}

	var pw sync.WaitGroup
	for _, topic := range topics {
		for _, b := range pubs {
			pw.Go(func() {
				for i := range perTopic {
					if _, err := b.Publish(ctx, feed.Publication{Topic: topic, Type: "trip.eta", Data: seqData(i)}); err != nil {
						t.Errorf("publish: %v", err)
						return
					}
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				}
			})
		}
	}
	pw.Wait()
	close(stop)
	churn.Wait()

	streams := map[string][]string{}
	for _, topic := range topics {
		evs, _, err := node.Read(ctx, topic, "0-0", 10_000)
		if err != nil {
			t.Fatal(err)
		}
		streams[topic] = eventIDs(evs)
	}
	// after returns the stream's IDs after id.
	after := func(topic, id string) []string {
		s := streams[topic]
		for i, x := range s {
			if c, _ := feed.CompareIDs(x, id); c > 0 {
				return s[i:]
			}
		}
		return nil
	}
	for _, se := range sessions {
		want := after(se.topic, se.start)
		if len(se.ids) > len(want) {
			t.Fatalf("%s from %s: %d events, the stream has %d after it", se.topic, se.start, len(se.ids), len(want))
		}
		equalIDs(t, se.ids, want[:len(se.ids)])
	}
	// Held subscribers: the whole stream after their position, in time.
	deadline := time.Now().Add(5 * time.Second)
	for _, h := range holders {
		want := after(h.s.Topic(), h.s.Position())
		for time.Now().Before(deadline) {
			h.mu.Lock()
			n := len(h.ids)
			h.mu.Unlock()
			if n >= len(want) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		h.s.Close()
	}
	hw.Wait()
	for _, h := range holders {
		equalIDs(t, h.ids, after(h.s.Topic(), h.s.Position()))
	}
	t.Logf("%d churn sessions, %d held subscribers, %d events per topic; catch-ups: broken_chain %v, resubscribe %v",
		len(sessions), len(holders), 2*perTopic+1,
		labeled(t, reg, "hextrack_feed_catchups_total", "trigger", "broken_chain"),
		labeled(t, reg, "hextrack_feed_catchups_total", "trigger", "resubscribe"))
	if len(sessions) < 50 {
		t.Fatalf("only %d churn sessions", len(sessions))
	}
}
