package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hextrack/hextrack/client"
)

// BenchmarkWSPings: 1,000 drivers on WebSockets to one node (real Redis),
// each sending a batch of pings and waiting for the ack; one op is one
// batch from every driver. Reports pings/s.
//
//	go test ./cmd/hextrack -run '^$' -bench WSPings -benchtime 20x
func BenchmarkWSPings(b *testing.B) {
	for _, batch := range []int{10, 50} {
		b.Run(fmt.Sprintf("drivers=1000/batch=%d", batch), func(b *testing.B) { benchWSPings(b, 1000, batch) })
	}
}

func benchWSPings(b *testing.B, drivers, batch int) {
	b.ReportAllocs()
	c := mustCluster(b, 1)
	conns := make([]*websocket.Conn, drivers)
	ids := make([]string, drivers)
	for i := range conns {
		ids[i] = c.driverID()
		u := "ws://" + c.nodes[0].Addr() + "/v1/drivers/" + ids[i] + "/ws?access_token=" + c.token(b, "driver", ids[i])
		ws, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		defer ws.Close()
		_ = ws.WriteJSON(map[string]any{"type": "hello"})
		conns[i] = ws
	}
	for _, ws := range conns { // wait for ready
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				b.Fatal(err)
			}
			if m["type"] == "ready" {
				break
			}
		}
	}
	start := time.Now().Add(-time.Hour)
	b.ResetTimer()
	t0 := time.Now()
	for n := range b.N {
		var wg sync.WaitGroup
		errs := make(chan error, drivers)
		for i, ws := range conns {
			wg.Go(func() {
				pings := make([]client.Ping, batch)
				for k := range pings {
					seq := int64(n*batch + k + 1)
					pings[k] = client.Ping{Lat: 41.1 + float64(i%100)*0.002 + float64(seq)*0.00001, Lng: -8.6 + float64(i/100)*0.002,
						TS: start.Add(time.Duration(seq) * time.Second), Seq: seq}
				}
				msg, _ := json.Marshal(map[string]any{"type": "locations", "ref": "b", "pings": pings})
				if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
					errs <- err
					return
				}
				for {
					var m struct {
						Type     string `json:"type"`
						Seq      int64  `json:"seq"`
						Accepted int    `json:"accepted"`
					}
					if err := ws.ReadJSON(&m); err != nil {
						errs <- err
						return
					}
					if m.Type == "ack" {
						if m.Accepted != batch {
							errs <- fmt.Errorf("driver %d: %d of %d accepted", i, m.Accepted, batch)
						}
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	el := time.Since(t0)
	b.ReportMetric(float64(b.N*drivers*batch)/el.Seconds(), "pings/s")
}
