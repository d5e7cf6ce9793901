package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsEvents events are posted at natsRate per second.
const natsEvents, natsRate = 2000, 200

// natsScenario is the NATS export's lag: a server started with
// HEXTRACK_NATS_URL (the machine's NATS, JetStream on; a stream and
// subject prefix of the run's own, deleted after) and a fresh archive;
// 2,000 chat messages posted to one trip at 200/s; each event's lag is
// the time from its ts until a NATS subscriber of the trip's subject
// received it (the export publishes after the archive pipeline has
// archived it). Reference: a JetStream publish with its ack, from this
// process to the same server.
type natsScenario struct{ rig }

func (sc *natsScenario) run(ctx context.Context) error {
	url := os.Getenv("HEXTRACK_BENCH_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		return fmt.Errorf("nats export: the bench needs a NATS server with JetStream at %s (HEXTRACK_BENCH_NATS_URL): %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	stream, subj := "HXBENCH_"+hex.EncodeToString(r[:]), "hxbench_"+hex.EncodeToString(r[:])
	defer func() { _ = js.DeleteStream(context.Background(), stream) }()
	defer func() { _ = js.DeleteStream(context.Background(), stream+"_REF") }()
	data := filepath.Join(sc.cfg.dir, "data-nats")
	if err := os.RemoveAll(data); err != nil { // a fresh archive: nothing pending from earlier runs
		return err
	}
	if err := sc.startServer(ctx, "nats", "HEXTRACK_NATS_URL="+url, "HEXTRACK_NATS_STREAM="+stream,
		"HEXTRACK_NATS_SUBJECT_PREFIX="+subj, "HEXTRACK_DATA_DIR="+data); err != nil {
		return err
	}
	rider := sc.token("rider", "nats-rider")
	pts := cityDense(2, 7)
	s, err := sc.createTrip(ctx, rider, "nats-1", "ride", "cash", pts[0], pts[1])
	if err != nil {
		return err
	}
	id := s.Trip.ID

	var (
		mu    sync.Mutex
		lags  lat
		seen  = map[string]int{}
		total int
	)
	sub, err := nc.Subscribe(subj+".trip.message."+id, func(m *nats.Msg) {
		now := time.Now()
		var env struct {
			ID string    `json:"id"`
			TS time.Time `json:"ts"`
		}
		if json.Unmarshal(m.Data, &env) != nil {
			return
		}
		mu.Lock()
		seen[env.ID]++
		total++
		if seen[env.ID] == 1 {
			lags = append(lags, now.Sub(env.TS))
		}
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection closes next

	h, err := dialH(ctx, nil, sc.addr())
	if err != nil {
		return err
	}
	tick := time.NewTicker(time.Second / natsRate)
	for i := 0; i < natsEvents; i++ {
		select {
		case <-ctx.Done():
			h.Close()
			tick.Stop()
			return ctx.Err()
		case <-tick.C:
		}
		body := fmt.Appendf(nil, `{"client_id":"n%d","text":"message %d"}`, i, i)
		st, rb, err := h.do(request("POST", sc.addr(), "/v1/trips/"+id+"/messages", rider, nil, body), "", nil)
		if err != nil || st != 201 {
			h.Close()
			tick.Stop()
			return fmt.Errorf("post message %d: %d %s %v", i, st, rb, err)
		}
	}
	h.Close()
	tick.Stop()
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= natsEvents {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats export: %d of %d events received: %w", n, natsEvents, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	ref, err := jsPublishLatency(ctx, js, stream+"_REF", subj+"ref", 500)
	if err != nil {
		return err
	}
	mu.Lock()
	l, dups := lags.sorted(), total-len(seen)
	mu.Unlock()
	cmd := fmt.Sprintf("%s -only nats  # %d chat messages to one trip at %d/s with HEXTRACK_NATS_URL; lag = a NATS subscriber's receipt - the event's ts; reference: JetStream publish+ack from the bench", benchrunBin, natsEvents, natsRate)
	sc.rec.add(Scenario{Name: "nats export lag", Metric: "event ts to NATS delivery (p99)", Value: ms(l.q(0.99)), Unit: "ms",
		Target: "<= 1000 ms, 0 lost", Met: l.q(0.99) <= time.Second && len(l) == natsEvents,
		Reference: Ref{Name: "JetStream publish+ack (p99)", Value: ms(ref.q(0.99)), Unit: "ms"}, Command: cmd,
		Extra: map[string]any{"events": natsEvents, "received": len(l), "duplicates_seen": dups,
			"p50_ms": ms(l.q(0.5)), "max_ms": ms(l.q(1)), "ref_p50_ms": ms(ref.q(0.5))}})
	return nil
}

// jsPublishLatency times n synchronous JetStream publishes (with their
// acks) to a scratch stream.
func jsPublishLatency(ctx context.Context, js jetstream.JetStream, stream, subj string, n int) (lat, error) {
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subj}}); err != nil {
		return nil, err
	}
	body := []byte(`{"id":"1800000000000-0","type":"trip.message","topic":"trip:x","ts":"2026-12-07T08:00:00Z","data":{"text":"message 1"}}`)
	var l lat
	for i := 0; i < n; i++ {
		t := time.Now()
		if _, err := js.Publish(ctx, subj, body); err != nil {
			return nil, err
		}
		l = append(l, time.Since(t))
	}
	if len(l) == 0 {
		return nil, errors.New("no publish timed")
	}
	return l.sorted(), nil
}
