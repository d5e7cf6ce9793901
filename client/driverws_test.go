package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hextrack/hextrack/client"
)

// TestDriverWSRetriesRefusedBatch: a locations batch answered with an error
// that holds only for now (rate_limited) is sent again, whole and in order,
// after a pause; one refused for good (too_many_pings) is dropped and the
// next batch goes on.
func TestDriverWSRetriesRefusedBatch(t *testing.T) {
	type batch struct {
		at   time.Time
		seqs []int64
	}
	var mu sync.Mutex
	var got []batch
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			var m struct {
				Type  string `json:"type"`
				Ref   string `json:"ref"`
				Pings []struct {
					Seq int64 `json:"seq"`
				} `json:"pings"`
			}
			if conn.ReadJSON(&m) != nil {
				return
			}
			switch m.Type {
			case "hello":
				_ = conn.WriteJSON(map[string]any{"type": "ready"})
			case "locations":
				b := batch{at: time.Now()}
				for _, p := range m.Pings {
					b.seqs = append(b.seqs, p.Seq)
				}
				mu.Lock()
				got = append(got, b)
				n := len(got)
				mu.Unlock()
				var reply map[string]any
				switch n {
				case 1: // the first batch: refused for now
					reply = map[string]any{"type": "error", "ref": m.Ref, "code": "rate_limited", "message": "too many pings: retry in 300ms"}
				case 3: // the second batch: refused for good
					reply = map[string]any{"type": "error", "ref": m.Ref, "code": "too_many_pings", "message": "at most 500"}
				default:
					reply = map[string]any{"type": "ack", "ref": m.Ref, "seq": b.seqs[len(b.seqs)-1], "accepted": len(b.seqs)}
				}
				_ = conn.WriteJSON(reply)
			}
		}
	}))
	defer srv.Close()

	acks := make(chan client.LocationAck, 10)
	d, err := client.DialDriver(context.Background(), client.DriverWSConfig{Bases: []string{srv.URL}, DriverID: "d1", Token: "tok",
		Batch: 2, OnAck: func(a client.LocationAck) { acks <- a }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ping := func(seq int64) client.Ping {
		return client.Ping{Seq: seq, Lat: 41.15, Lng: -8.61, TS: time.Now().UTC()}
	}
	d.Locations(ping(1), ping(2))
	waitAck := func(seq int64) {
		t.Helper()
		select {
		case a := <-acks:
			if a.Seq != seq {
				t.Fatalf("ack seq %d, want %d", a.Seq, seq)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no ack of seq %d", seq)
		}
	}
	waitAck(2)
	d.Locations(ping(3), ping(4))
	d.Locations(ping(5))
	waitAck(5)

	mu.Lock()
	defer mu.Unlock()
	want := [][]int64{{1, 2}, {1, 2}, {3, 4}, {5}}
	if len(got) != len(want) {
		t.Fatalf("server got %d batches %+v, want %v", len(got), got, want)
	}
	for i, w := range want {
		js, _ := json.Marshal(got[i].seqs)
		wj, _ := json.Marshal(w)
		if string(js) != string(wj) {
			t.Fatalf("batch %d = %s, want %s", i, js, wj)
		}
	}
	if pause := got[1].at.Sub(got[0].at); pause < 900*time.Millisecond {
		t.Errorf("the refused batch went again after %v, want a pause of about 1s", pause)
	}
	if b := d.Buffered(); b != 0 {
		t.Errorf("%d pings still buffered", b)
	}
}
