package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

// riders runs the riders process against the server of pid. want is
// its number of SSE riders: none connected fails the run with a message
// naming what it waited for, as does a wait that outlasts ctx.
func (sc *fanoutScenario) riders(ctx context.Context, name string, pid, want int, profile bool, args ...string) (ridersRun, error) {
	var out ridersRun
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return out, err
	}
	out.before = rssKiB(pid)
	cmd := command(ctx, sc.self, append([]string{"riders"}, args...)...)
	ef, err := os.Create(filepath.Join(sc.cfg.dir, "riders-"+name+".log"))
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
		sc.rec.heapProfile(ctx, "idle")
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
		prof = sc.rec.profile(ctx, name, 15*time.Second)
	}
	// The window ends when the riders process stops pinging; its report
	// follows two seconds later.
	dec := json.NewDecoder(br)
	go func() {
		// CPU over the window only: sample when the pings stop.
		_ = sleepCtx(ctx, sc.cfg.fanDur-time.Since(t0))
		cpuEnd.Store(cpuTicks(pid))
		tEnd.Store(time.Now().UnixNano())
	}()
	res, err := await(ctx, fmt.Sprintf("riders %s: the report after the %s window", name, sc.cfg.fanDur),
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

// fanoutScenario is scenario 4 (19,000 idle SSE connections: RSS per
// connection) and scenario 3 (fan-out of driver pings to those riders) on
// the same connections, first against the reference hub, then hextrack.
type fanoutScenario struct{ rig }

// run measures the reference hub, then hextrack with trips assigned
// through the API, and records the idle and fan-out rows.
func (sc *fanoutScenario) run(ctx context.Context) error {
	n := sc.cfg.trips
	dur := sc.cfg.fanDur.String()
	ref, refAddr, err := sc.startRef(ctx)
	if err != nil {
		return err
	}
	rr, err := sc.riders(ctx, "ref", ref.pid(), 4*n, false, "-ref", strconv.Itoa(n), "-addr", refAddr, "-duration", dur)
	ref.stop(5 * time.Second)
	if err != nil {
		return err
	}
	logf("reference: %d connected, %.1f KiB/conn, p50 %.2f p99 %.2f max %.2f ms, %.0f deliveries/s",
		rr.res.Connected, perConn(rr), rr.res.P50ms, rr.res.P99ms, rr.res.Maxms, rr.res.Rate)

	if err := sc.startServer(ctx, "fanout"); err != nil {
		return err
	}
	t := time.Now()
	file, err := tripSetup{sc.servers}.run(ctx, n)
	if err != nil {
		return err
	}
	logf("%d trips assigned in %s", n, time.Since(t).Round(time.Second))
	hr, err := sc.riders(ctx, "fanout", sc.srv.pid(), 4*n, true, "-setup", file, "-addr", sc.addr(), "-duration", dur,
		"-redis", fmt.Sprintf("redis://127.0.0.1:%d/0", sc.cfg.redisPort))
	if err != nil {
		return err
	}
	r := hr.res
	catchups := sc.feedCatchups(ctx)
	logf("fan-out feed catch-ups on the server: %v", catchups)
	logf("fan-out lost-event check: %d expected, %d lost, %d not yet held when their stream was read (sample %+v)",
		r.Durable, r.Lost, r.LateAtRead, r.LateSample)
	conns := 4 * n
	cmd4 := fmt.Sprintf("%s -only idle  # %d trips x 4 SSE riders (GET /v1/trips/{id}/events, rider token) from 127.0.0.2-17; server VmRSS after 10 s idle minus VmRSS before, / connections; reference: `benchrun ref` GET /sub/{topic} (net/http, header + flush, held)", benchrunBin, n)
	sc.rec.add(Scenario{Name: "4 idle SSE", Metric: fmt.Sprintf("server RSS per connection (%d open)", r.Connected), Value: round1(perConn(hr)), Unit: "KiB",
		Target: "<= 20 KiB", Met: r.Connected == conns && perConn(hr) <= 20,
		Reference: Ref{Name: "minimal net/http SSE server, same clients", Value: round1(perConn(rr)), Unit: "KiB"}, Command: cmd4,
		Extra: map[string]any{"rss_before_kib": hr.before, "rss_idle_kib": hr.idle, "server_fds": hr.fds, "connect_errors": r.ConnectErrs,
			"connect_seconds": round1(r.ConnectSecs), "ref_rss_before_kib": rr.before, "ref_rss_idle_kib": rr.idle}})
	cmd3 := fmt.Sprintf("%s -only fanout  # %d assigned trips, 4 SSE riders each; each trip's driver POSTs /v1/drivers/{id}/locations every 1.9 s over 48 keep-alive connections for %s; latency = rider receipt - request write (same process); messages every 10 s per trip for the lost-event check; reference: `benchrun ref` POST /pub/{topic} → GET /sub/{topic} in-memory hub, same riders process", benchrunBin, n, dur)
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
	sc.rec.add(Scenario{Name: "3 fan-out", Metric: "ping→rider p99", Value: r.P99ms, Unit: "ms", Target: "<= 10 ms", Met: r.P99ms <= 10 && r.Deliveries > 0,
		Reference: refRow(rr.res.P99ms, "p99"), Command: cmd3, Extra: extra})
	sc.rec.add(Scenario{Name: "3 fan-out", Metric: "ping→rider max", Value: r.Maxms, Unit: "ms", Target: "<= 100 ms", Met: r.Maxms <= 100 && r.Deliveries > 0,
		Reference: refRow(rr.res.Maxms, "max"), Command: cmd3})
	sc.rec.add(Scenario{Name: "3 fan-out", Metric: "ping→rider p50", Value: r.P50ms, Unit: "ms", Target: "none", Met: true,
		Reference: refRow(rr.res.P50ms, "p50"), Command: cmd3})
	want := float64(4*n) / 1.9
	sc.rec.add(Scenario{Name: "3 fan-out", Metric: "location deliveries/s", Value: round1(r.Rate), Unit: "/s", Target: fmt.Sprintf(">= %.0f (95%% of the offered %.0f)", 0.95*want, want), Met: r.Rate >= 0.95*want,
		Reference: Ref{Name: "net/http in-memory hub", Value: round1(rr.res.Rate), Unit: "/s"}, Command: cmd3})
	sc.rec.add(Scenario{Name: "3 fan-out", Metric: "lost durable events", Value: float64(r.Lost), Unit: "events", Target: "0",
		Met: r.Lost == 0 && r.Durable > 0 && r.Dups == 0 && r.OutOfOrder == 0, Command: cmd3,
		Notes: fmt.Sprintf("%d durable events expected across riders (%d messages posted); streams read %.0f s after the last post, riders compared %.0f s after that read (2 feed position-check periods + 1 s); %d entries were not yet held at the read",
			r.Durable, r.Chats, r.SettleSecs, r.GraceSecs, r.LateAtRead)})
	return nil
}

func perConn(r ridersRun) float64 {
	if r.res.Connected == 0 {
		return 0
	}
	return float64(r.idle-r.before) / float64(r.res.Connected)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
