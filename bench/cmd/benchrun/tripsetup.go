package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// tripSetup assigns trips through the public API, as riders and drivers
// would (the poll and fan-out scenarios measure assigned trips).
type tripSetup struct{ *servers }

// run puts n drivers on a 4 km grid, has a rider order a trip
// 300 m from each, lets the server's dispatch offer it (the nearest
// driver by far), and accepts through the REST command channel. It writes
// the trips, with their tokens, to a file for the riders process.
func (ts tripSetup) run(ctx context.Context, n int) (string, error) {
	trips, err := ts.assign(ctx, n)
	if err != nil {
		return "", err
	}
	path := filepath.Join(ts.cfg.dir, "fanout-trips.jsonl")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	enc := json.NewEncoder(f)
	for i := range trips {
		if err := enc.Encode(&trips[i]); err != nil {
			f.Close()
			return "", err
		}
	}
	return path, f.Close()
}

// assign has n trips assigned as run describes and returns them.
func (ts tripSetup) assign(ctx context.Context, n int) ([]fanTrip, error) {
	trips := make([]fanTrip, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	cols := 70
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				// 4 km apart: beyond dispatch's first radii (1.5 and 3 km),
				// so each trip's only candidate is its own driver.
				pos := geo.Point{Lat: 39.9 + float64(i/cols)*0.036, Lng: -10.2 + float64(i%cols)*0.0477}
				if err := ts.trip(ctx, i, pos, &trips[i]); err != nil {
					select {
					case errc <- fmt.Errorf("trip %d: %w", i, err):
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	return trips, nil
}

func (ts tripSetup) trip(ctx context.Context, i int, pos geo.Point, t *fanTrip) error {
	t.Drv, t.Lat, t.Lng, t.Seq = "f"+strconv.Itoa(i), pos.Lat, pos.Lng, 1
	t.DTok = ts.token("driver", t.Drv)
	t.RTok = ts.token("rider", "r"+strconv.Itoa(i))
	ping := map[string]any{"pings": []map[string]any{{"lat": pos.Lat, "lng": pos.Lng, "ts": time.Now().UnixMilli(), "seq": 1, "accuracy": 5}}}
	if _, _, err := call(ctx, http.MethodPost, ts.base()+"/v1/drivers/"+t.Drv+"/locations", t.DTok, ping, nil); err != nil {
		return err
	}
	s, err := ts.createTrip(ctx, t.RTok, "fan-"+strconv.Itoa(i), "ride", "cash", geo.Offset(pos, 0, 300), geo.Offset(pos, 0, 2300))
	if err != nil {
		return err
	}
	t.Trip = s.Trip.ID
	after := ""
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		// Stay fresh (30 s staleness) while dispatch gets to this trip.
		t.Seq++
		ping["pings"].([]map[string]any)[0]["seq"] = t.Seq
		ping["pings"].([]map[string]any)[0]["ts"] = time.Now().UnixMilli()
		if _, _, err := call(ctx, http.MethodPost, ts.base()+"/v1/drivers/"+t.Drv+"/locations", t.DTok, ping, nil); err != nil {
			return err
		}
		q := url.Values{"wait": {"5"}}
		if after != "" {
			q.Set("after", after)
		}
		var page struct {
			Events []struct {
				ID   string          `json:"id"`
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			} `json:"commands"`
			Next string `json:"next"`
		}
		if _, _, err := call(ctx, http.MethodGet, ts.base()+"/v1/drivers/"+t.Drv+"/commands?"+q.Encode(), t.DTok, nil, &page); err != nil {
			return err
		}
		for _, e := range page.Events {
			if os.Getenv("BENCH_DEBUG") != "" {
				logf("%s (trip %s): %s %s %s", t.Drv, t.Trip, e.ID, e.Type, e.Data)
			}
			after = e.ID
			var d struct {
				TripID string `json:"trip_id"`
			}
			_ = json.Unmarshal(e.Data, &d)
			if e.Type == "offer" && d.TripID == t.Trip {
				_, _, err := call(ctx, http.MethodPost, ts.base()+"/v1/trips/"+t.Trip+"/accept", t.DTok, nil, nil)
				if err == nil {
					_, _, _ = call(ctx, http.MethodPost, ts.base()+"/v1/drivers/"+t.Drv+"/commands/"+url.PathEscape(e.ID)+"/ack", t.DTok, nil, nil)
				}
				return err
			}
			if e.Type == "offer" && d.TripID != "" {
				_, _, _ = call(ctx, http.MethodPost, ts.base()+"/v1/trips/"+d.TripID+"/decline", t.DTok, nil, nil)
			}
		}
		if page.Next != "" {
			after = page.Next
		}
	}
	return ts.noOffer(ctx, t)
}

// noOffer is the error of a trip that got no offer: the trip as the rider
// sees it and its keys, the dispatch queues and the driver in Redis.
func (ts tripSetup) noOffer(ctx context.Context, t *fanTrip) error {
	var snap map[string]any
	_, _, _ = call(ctx, http.MethodGet, ts.base()+"/v1/trips/"+t.Trip, t.RTok, nil, &snap)
	var dump []string
	keys, _ := ts.rdb.Keys(ctx, "*"+t.Trip+"*").Result()
	for _, k := range keys {
		typ, _ := ts.rdb.Type(ctx, k).Result()
		if typ == "hash" {
			h, _ := ts.rdb.HGetAll(ctx, k).Result()
			dump = append(dump, fmt.Sprintf("%s=%v", k, h))
		} else {
			dump = append(dump, k+":"+typ)
		}
	}
	qk, _ := ts.rdb.Keys(ctx, "*queue*").Result()
	for _, k := range qk {
		sc, err := ts.rdb.ZScore(ctx, k, t.Trip).Result()
		dump = append(dump, fmt.Sprintf("%s score=%v err=%v now=%d", k, int64(sc), err, time.Now().UnixMilli()))
	}
	dk, _ := ts.rdb.HGetAll(ctx, prefix+"drv:{"+t.Drv+"}").Result()
	dump = append(dump, fmt.Sprintf("driver=%v", dk))
	return fmt.Errorf("no offer for %s within 90 s (trip now: %v) %v", t.Trip, snap["trip"], dump)
}
