package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// ridersConnectTimeout bounds the riders process's connect phase (19,000
// SSE connections take ~4 s on a quiet host; each has 30 s for its
// headers).
const ridersConnectTimeout = 60 * time.Second

// ridersRun is one run of the riders process against the server of pid:
// RSS before and after its SSE connections are open and idle, then the
// fan-out window with the server's CPU and RSS sampled each second.
type ridersRun struct {
	before, idle, maxRSS int64 // KiB
	fds                  int
	cpuPct               float64 // of one core, over the window
	res                  RidersResult
}

// runRiders runs the riders process against the server of pid. want is
// its number of SSE riders: none connected fails the run with a message
// naming what it waited for, as does a wait that outlasts ctx.
func (b *bench) runRiders(ctx context.Context, name string, pid, want int, profile bool, args ...string) (ridersRun, error) {
	var out ridersRun
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return out, err
	}
	out.before = rssKiB(pid)
	cmd := command(ctx, b.self, append([]string{"riders"}, args...)...)
	ef, err := os.Create(filepath.Join(b.cfg.dir, "riders-"+name+".log"))
	if err != nil {
		return out, err
	}
	defer ef.Close()
	cmd.Stderr = ef
	in, _ := cmd.StdinPipe()
	so, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return out, err
	}
	defer func() { killGroup(cmd) }()
	br := bufio.NewReader(so)
	t0 := time.Now()
	cctx, cancel := context.WithTimeoutCause(ctx, ridersConnectTimeout, fmt.Errorf("connect deadline %s", ridersConnectTimeout))
	line, err := await(cctx, fmt.Sprintf("riders %s: connecting %d SSE riders", name, want), func() (string, error) { return br.ReadString('\n') })
	cancel()
	if err != nil {
		return out, fmt.Errorf("%w (see %s)", err, ef.Name())
	}
	logf("riders %s: %s", name, strings.TrimSpace(line))
	var connected, connErrs int
	if _, err := fmt.Sscanf(line, "connected %d %d", &connected, &connErrs); err != nil || connected == 0 {
		return out, fmt.Errorf("riders %s: connected %d of %d after %s (%d errors; see %s)", name, connected, want,
			time.Since(t0).Round(time.Second), connErrs, ef.Name())
	}
	if err := sleepCtx(ctx, 10*time.Second); err != nil { // idle: heartbeats only
		return out, err
	}
	out.idle, out.fds = rssKiB(pid), openFiles(pid)
	if profile { // what the idle connections hold
		heap := filepath.Join(b.cfg.dir, "idle.heap.pprof")
		if err := fetch(ctx, b.pprofURL()+"heap", heap); err == nil {
			b.profMu.Lock()
			b.res.Profiles["idle"] = map[string]string{"heap": heap,
				"inuse_space_top": pprofTop(b.cfg.server, heap, 20, "-sample_index=inuse_space")}
			b.profMu.Unlock()
		}
	}
	if _, err := in.Write([]byte("go\n")); err != nil {
		return out, err
	}
	c0, t0 := cpuTicks(pid), time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var maxRSS, cpuEnd atomic.Int64
	var tEnd atomic.Int64
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if r := rssKiB(pid); r > maxRSS.Load() {
					maxRSS.Store(r)
				}
			}
		}
	}()
	var prof <-chan struct{}
	if profile && sleepCtx(ctx, 5*time.Second) == nil {
		prof = b.profile(ctx, name, 15*time.Second)
	}
	// The window ends when the riders process stops pinging; its report
	// follows two seconds later.
	dec := json.NewDecoder(br)
	go func() {
		// CPU over the window only: sample when the pings stop.
		_ = sleepCtx(ctx, b.cfg.fanDur-time.Since(t0))
		cpuEnd.Store(cpuTicks(pid))
		tEnd.Store(time.Now().UnixNano())
	}()
	res, err := await(ctx, fmt.Sprintf("riders %s: the report after the %s window", name, b.cfg.fanDur),
		func() (RidersResult, error) {
			var r RidersResult
			if err := dec.Decode(&r); err != nil {
				return r, fmt.Errorf("riders %s report: %w", name, err)
			}
			return r, nil
		})
	out.res = res
	close(stop)
	wg.Wait()
	if prof != nil {
		<-prof
	}
	if err != nil {
		return out, fmt.Errorf("%w (see %s)", err, ef.Name())
	}
	for cpuEnd.Load() == 0 {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return out, err
		}
	}
	el := time.Duration(tEnd.Load() - t0.UnixNano()).Seconds()
	out.cpuPct = float64(cpuEnd.Load()-c0) / el // ticks are 1/100 s: ticks/s = % of a core
	out.maxRSS = maxRSS.Load()
	return out, nil
}

// scenarioIdleFanout runs scenario 4 (19,000 idle SSE connections: RSS per
// connection) and scenario 3 (fan-out of driver pings to those riders) on
// the same connections, first against the reference hub, then hextrack.
func (b *bench) scenarioIdleFanout(ctx context.Context) error {
	n := b.cfg.trips
	dur := b.cfg.fanDur.String()
	ref, refAddr, err := b.startRef(ctx)
	if err != nil {
		return err
	}
	rr, err := b.runRiders(ctx, "ref", ref.pid(), 4*n, false, "-ref", strconv.Itoa(n), "-addr", refAddr, "-duration", dur)
	ref.stop(5 * time.Second)
	if err != nil {
		return err
	}
	logf("reference: %d connected, %.1f KiB/conn, p50 %.2f p99 %.2f max %.2f ms, %.0f deliveries/s",
		rr.res.Connected, perConn(rr), rr.res.P50ms, rr.res.P99ms, rr.res.Maxms, rr.res.Rate)

	if err := b.startServer(ctx, "fanout"); err != nil {
		return err
	}
	t := time.Now()
	file, err := b.setupTrips(ctx, n)
	if err != nil {
		return err
	}
	logf("%d trips assigned in %s", n, time.Since(t).Round(time.Second))
	hr, err := b.runRiders(ctx, "fanout", b.srv.pid(), 4*n, true, "-setup", file, "-addr", b.addr(), "-duration", dur,
		"-redis", fmt.Sprintf("redis://127.0.0.1:%d/0", b.cfg.redisPort))
	if err != nil {
		return err
	}
	r := hr.res
	catchups := b.feedCatchups(ctx)
	logf("fan-out feed catch-ups on the server: %v", catchups)
	logf("fan-out lost-event check: %d expected, %d lost, %d not yet held when their stream was read (sample %+v)",
		r.Durable, r.Lost, r.LateAtRead, r.LateSample)
	conns := 4 * n
	cmd4 := fmt.Sprintf("%s -only idle  # %d trips x 4 SSE riders (GET /v1/trips/{id}/events, rider token) from 127.0.0.2-17; server VmRSS after 10 s idle minus VmRSS before, / connections; reference: `benchrun ref` GET /sub/{topic} (net/http, header + flush, held)", b.cmdline0(), n)
	b.add(Scenario{Name: "4 idle SSE", Metric: fmt.Sprintf("server RSS per connection (%d open)", r.Connected), Value: round1(perConn(hr)), Unit: "KiB",
		Target: "<= 20 KiB", Met: r.Connected == conns && perConn(hr) <= 20,
		Reference: Ref{Name: "minimal net/http SSE server, same clients", Value: round1(perConn(rr)), Unit: "KiB"}, Command: cmd4,
		Extra: map[string]any{"rss_before_kib": hr.before, "rss_idle_kib": hr.idle, "server_fds": hr.fds, "connect_errors": r.ConnectErrs,
			"connect_seconds": round1(r.ConnectSecs), "ref_rss_before_kib": rr.before, "ref_rss_idle_kib": rr.idle}})
	cmd3 := fmt.Sprintf("%s -only fanout  # %d assigned trips, 4 SSE riders each; each trip's driver POSTs /v1/drivers/{id}/locations every 1.9 s over 48 keep-alive connections for %s; latency = rider receipt - request write (same process); messages every 10 s per trip for the lost-event check; reference: `benchrun ref` POST /pub/{topic} → GET /sub/{topic} in-memory hub, same riders process", b.cmdline0(), n, dur)
	refRow := func(v float64, what string) Ref {
		return Ref{Name: "net/http in-memory hub (no Redis, no ingest), " + what, Value: v, Unit: "ms"}
	}
	extra := map[string]any{"deliveries": r.Deliveries, "deliveries_per_s": round1(r.Rate), "p999_ms": r.P999ms,
		"p99_ms_per_second": r.Timeline, "deliveries_per_second": r.PerSecond, "server_cpu_pct_of_core": round1(hr.cpuPct),
		"server_rss_max_mib": round1(float64(hr.maxRSS) / 1024), "pings": r.Pings, "ping_errors": r.PingErrs, "ping_error_sample": r.PingStatus,
		"messages": r.Chats, "message_errors": r.ChatErrs, "durable_expected": r.Durable, "durable_duplicates": r.Dups,
		"durable_out_of_order": r.OutOfOrder, "durable_late_at_read": r.LateAtRead, "durable_late_sample": r.LateSample,
		"server_feed_catchups": catchups, "lost_check_settle_s": r.SettleSecs, "lost_check_grace_s": r.GraceSecs, "streams_ended": r.Ended, "resets": r.Resets, "unmatched_locations": r.Unmatched,
		"ref": map[string]any{"p50_ms": rr.res.P50ms, "p99_ms": rr.res.P99ms, "max_ms": rr.res.Maxms, "deliveries_per_s": round1(rr.res.Rate),
			"cpu_pct_of_core": round1(rr.cpuPct), "rss_max_mib": round1(float64(rr.maxRSS) / 1024), "p99_ms_per_second": rr.res.Timeline}}
	b.add(Scenario{Name: "3 fan-out", Metric: "ping→rider p99", Value: r.P99ms, Unit: "ms", Target: "<= 10 ms", Met: r.P99ms <= 10 && r.Deliveries > 0,
		Reference: refRow(rr.res.P99ms, "p99"), Command: cmd3, Extra: extra})
	b.add(Scenario{Name: "3 fan-out", Metric: "ping→rider max", Value: r.Maxms, Unit: "ms", Target: "<= 100 ms", Met: r.Maxms <= 100 && r.Deliveries > 0,
		Reference: refRow(rr.res.Maxms, "max"), Command: cmd3})
	b.add(Scenario{Name: "3 fan-out", Metric: "ping→rider p50", Value: r.P50ms, Unit: "ms", Target: "none", Met: true,
		Reference: refRow(rr.res.P50ms, "p50"), Command: cmd3})
	want := float64(4*n) / 1.9
	b.add(Scenario{Name: "3 fan-out", Metric: "location deliveries/s", Value: round1(r.Rate), Unit: "/s", Target: fmt.Sprintf(">= %.0f (95%% of the offered %.0f)", 0.95*want, want), Met: r.Rate >= 0.95*want,
		Reference: Ref{Name: "net/http in-memory hub", Value: round1(rr.res.Rate), Unit: "/s"}, Command: cmd3})
	b.add(Scenario{Name: "3 fan-out", Metric: "lost durable events", Value: float64(r.Lost), Unit: "events", Target: "0",
		Met: r.Lost == 0 && r.Durable > 0 && r.Dups == 0 && r.OutOfOrder == 0, Command: cmd3,
		Notes: fmt.Sprintf("%d durable events expected across riders (%d messages posted); streams read %.0f s after the last post, riders compared %.0f s after that read (2 feed position-check periods + 1 s); %d entries were not yet held at the read",
			r.Durable, r.Chats, r.SettleSecs, r.GraceSecs, r.LateAtRead)})
	return nil
}

// feedCatchups reads the server's hextrack_feed_catchups_total by trigger
// (position_check, broken_chain, resubscribe): how often subscribers were
// sent back to the stream, and why. nil when /metrics can't be read.
func (b *bench) feedCatchups(ctx context.Context) map[string]float64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+b.token("ops", "bench"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	const name = `hextrack_feed_catchups_total{trigger="`
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name) {
			continue
		}
		trigger, val, ok := strings.Cut(l[len(name):], `"} `)
		if v, err := strconv.ParseFloat(val, 64); ok && err == nil {
			out[trigger] = v
		}
	}
	return out
}

func perConn(r ridersRun) float64 {
	if r.res.Connected == 0 {
		return 0
	}
	return float64(r.idle-r.before) / float64(r.res.Connected)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// setupTrips puts n drivers on a 4 km grid, has a rider order a trip
// 300 m from each, lets the server's dispatch offer it (the nearest
// driver by far), and accepts through the REST command channel. It writes
// the trips, with their tokens, to a file for the riders process.
func (b *bench) setupTrips(ctx context.Context, n int) (string, error) {
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
				if err := b.setupTrip(ctx, i, pos, &trips[i]); err != nil {
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
		return "", err
	default:
	}
	path := filepath.Join(b.cfg.dir, "fanout-trips.jsonl")
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

func (b *bench) setupTrip(ctx context.Context, i int, pos geo.Point, t *fanTrip) error {
	t.Drv, t.Lat, t.Lng, t.Seq = "f"+strconv.Itoa(i), pos.Lat, pos.Lng, 1
	t.DTok = b.token("driver", t.Drv)
	t.RTok = b.token("rider", "r"+strconv.Itoa(i))
	ping := map[string]any{"pings": []map[string]any{{"lat": pos.Lat, "lng": pos.Lng, "ts": time.Now().UnixMilli(), "seq": 1, "accuracy": 5}}}
	if _, _, err := call(ctx, http.MethodPost, b.base()+"/v1/drivers/"+t.Drv+"/locations", t.DTok, ping, nil); err != nil {
		return err
	}
	s, err := b.createTrip(ctx, t.RTok, "fan-"+strconv.Itoa(i), "ride", "cash", geo.Offset(pos, 0, 300), geo.Offset(pos, 0, 2300))
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
		if _, _, err := call(ctx, http.MethodPost, b.base()+"/v1/drivers/"+t.Drv+"/locations", t.DTok, ping, nil); err != nil {
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
		if _, _, err := call(ctx, http.MethodGet, b.base()+"/v1/drivers/"+t.Drv+"/commands?"+q.Encode(), t.DTok, nil, &page); err != nil {
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
				_, _, err := call(ctx, http.MethodPost, b.base()+"/v1/trips/"+t.Trip+"/accept", t.DTok, nil, nil)
				if err == nil {
					_, _, _ = call(ctx, http.MethodPost, b.base()+"/v1/drivers/"+t.Drv+"/commands/"+url.PathEscape(e.ID)+"/ack", t.DTok, nil, nil)
				}
				return err
			}
			if e.Type == "offer" && d.TripID != "" {
				_, _, _ = call(ctx, http.MethodPost, b.base()+"/v1/trips/"+d.TripID+"/decline", t.DTok, nil, nil)
			}
		}
		if page.Next != "" {
			after = page.Next
		}
	}
	var snap map[string]any
	_, _, _ = call(ctx, http.MethodGet, b.base()+"/v1/trips/"+t.Trip, t.RTok, nil, &snap)
	var dump []string
	keys, _ := b.rdb.Keys(ctx, "*"+t.Trip+"*").Result()
	for _, k := range keys {
		typ, _ := b.rdb.Type(ctx, k).Result()
		if typ == "hash" {
			h, _ := b.rdb.HGetAll(ctx, k).Result()
			dump = append(dump, fmt.Sprintf("%s=%v", k, h))
		} else {
			dump = append(dump, k+":"+typ)
		}
	}
	qk, _ := b.rdb.Keys(ctx, "*queue*").Result()
	for _, k := range qk {
		sc, err := b.rdb.ZScore(ctx, k, t.Trip).Result()
		dump = append(dump, fmt.Sprintf("%s score=%v err=%v now=%d", k, int64(sc), err, time.Now().UnixMilli()))
	}
	dk, _ := b.rdb.HGetAll(ctx, prefix+"drv:{"+t.Drv+"}").Result()
	dump = append(dump, fmt.Sprintf("driver=%v", dk))
	return fmt.Errorf("no offer for %s within 90 s (trip now: %v) %v", t.Trip, snap["trip"], dump)
}
