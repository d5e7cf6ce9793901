package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/sim/metrics"
	"github.com/hextrack/hextrack/sim/zonecheck"
)

// zoneRun is a run's zones (Config.Zones): created through the ops API
// before the drivers start, their events read back and checked against
// the oracle of the drivers' honest fixes after they stop, then deleted.
type zoneRun struct {
	ops    *client.Client
	oracle *zonecheck.Oracle
	zones  []zonecheck.Zone
}

// zoneKind: not a service area, so trips are never refused for them.
const zoneKind = "queue"

// startZones puts cfg.Zones star-shaped zones of 6–12 vertices and
// 150–600 m at random road nodes (where cars drive through them), as an
// ops user of run runID.
func startZones(ctx context.Context, cfg Config, tok Tokens, hc *http.Client, runID string) (*zoneRun, error) {
	t, err := tok.Mint(ctx, "ops", "sim-"+runID+"-ops")
	if err != nil {
		return nil, err
	}
	z := &zoneRun{ops: client.New(cfg.Server, t, hc), oracle: zonecheck.NewOracle()}
	rng := rand.New(rand.NewPCG(cfg.Seed, 1<<40))
	for i := range cfg.Zones {
		c := cfg.Graph.RandomPoint(rng)
		k, r := 6+rng.IntN(7), 150+rng.Float64()*450
		ring := make([][2]float64, 0, k+1)
		pts := make([]zonecheck.Point, 0, k+1)
		for j := range k {
			p := geo.Offset(c, (float64(j)+0.2+0.6*rng.Float64())/float64(k)*360, r*(0.5+0.5*rng.Float64()))
			ring = append(ring, [2]float64{p.Lng, p.Lat})
			pts = append(pts, zonecheck.Point{Lat: p.Lat, Lng: p.Lng})
		}
		ring = append(ring, ring[0])
		body := map[string]any{"name": fmt.Sprintf("sim %s zone %d", runID, i), "kind": zoneKind, "dwell_after_s": 60,
			"geometry": map[string]any{"type": "Polygon", "coordinates": [][][2]float64{ring}}}
		var out struct {
			ID string `json:"id"`
		}
		if _, _, err := z.ops.Do(ctx, http.MethodPost, "/v1/zones", body, &out, nil); err != nil {
			z.remove(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("create zone %d: %w", i, err)
		}
		z.zones = append(z.zones, zonecheck.Zone{ID: out.ID, Ring: pts})
	}
	return z, nil
}

// driverStopped tells the oracle the last fix the server holds of a
// driver that stopped: the zone check counts only the fixes it got. A
// nil zoneRun (no zones) does nothing.
func (z *zoneRun) driverStopped(ctx context.Context, api *client.Client, id string) {
	if z == nil {
		return
	}
	if dr, err := api.GetDriver(ctx, id); err == nil {
		z.oracle.Upto(id, dr.LastSeq)
	}
}

// report is the zone check of a finished run (nil without zones); an
// error goes to st.
func (z *zoneRun) report(ctx context.Context, st *metrics.Stats) *zonecheck.Report {
	if z == nil {
		return nil
	}
	r, err := z.check(ctx)
	if err != nil {
		st.Err(err)
		return nil
	}
	return &r
}

// check waits for the server's zone tracker to catch up, reads every
// zone's events and checks them.
func (z *zoneRun) check(ctx context.Context) (zonecheck.Report, error) {
	if !sleepCtx(ctx, 3*time.Second) {
		return zonecheck.Report{}, ctx.Err()
	}
	var (
		mu   sync.Mutex
		all  []zonecheck.Event
		errs []error
		wg   sync.WaitGroup
	)
	for _, zn := range z.zones {
		wg.Go(func() {
			evs, err := z.read(ctx, zn.ID)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, evs...)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return zonecheck.Report{}, errs[0]
	}
	return z.oracle.Check(z.zones, all), nil
}

// read returns a zone's events from the oldest retained, over its SSE
// stream: caught up at the server's heartbeat or after 2 s of silence.
func (z *zoneRun) read(ctx context.Context, id string) ([]zonecheck.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, z.ops.BaseURL()+"/v1/zones/"+id+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+z.ops.Token())
	req.Header.Set("Accept", "text/event-stream")
	hc := *z.ops.HTTPClient()
	hc.Timeout = 0 // a stream; ctx bounds it
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("zone %s events: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("zone %s events: %s", id, resp.Status)
	}
	idle := time.AfterFunc(2*time.Second, cancel)
	defer idle.Stop()
	var out []zonecheck.Event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var evID, data string
	for sc.Scan() {
		line := sc.Text()
		idle.Reset(2 * time.Second)
		switch {
		case strings.HasPrefix(line, ":"):
			return out, nil // heartbeat: nothing newer
		case strings.HasPrefix(line, "id:"):
			evID = strings.TrimSpace(line[3:])
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(line[5:], " ")
		case line == "" && data != "":
			var env struct {
				Type string `json:"type"`
				Data struct {
					Zone   string    `json:"zone_id"`
					Driver string    `json:"driver_id"`
					TS     time.Time `json:"ts"`
					Reason string    `json:"reason"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(data), &env); err != nil {
				return out, fmt.Errorf("zone %s events: %w", id, err)
			}
			out = append(out, zonecheck.Event{ID: evID, Type: env.Type, Zone: env.Data.Zone, Driver: env.Data.Driver,
				TS: env.Data.TS, Reason: env.Data.Reason})
			evID, data = "", ""
		}
	}
	if ctx.Err() != nil {
		return out, nil // silence: caught up
	}
	return out, sc.Err()
}

// remove deletes the run's zones (best effort).
func (z *zoneRun) remove(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, zn := range z.zones {
		_, _, _ = z.ops.Do(ctx, http.MethodDelete, "/v1/zones/"+zn.ID, nil, nil, nil)
	}
}
