package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type netConn = net.Conn

const ingestDrivers, ingestProcs = 10000, 2

// ingestScenario is scenario 1: pings/s sustained over the window from
// 10,000 drivers, first over WebSocket, then over REST; reference:
// redis-benchmark GEOADD pipelined on the same Redis.
type ingestScenario struct{ rig }

// run measures the reference, then WebSocket, then REST.
func (sc *ingestScenario) run(ctx context.Context) error {
	if err := sc.startServer(ctx, "ingest"); err != nil {
		return err
	}
	refArgs := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(sc.cfg.redisPort), "-c", "50", "-n", "2000000", "-P", "50", "-r", "200000", "-q",
		"GEOADD", "bench:ref:geoadd", "-8.61", "41.15", "m:__rand_int__"}
	out, err := command(ctx, "redis-benchmark", refArgs...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("redis-benchmark GEOADD (the reference): %w", context.Cause(ctx))
		}
		return fmt.Errorf("redis-benchmark: %v: %s", err, out)
	}
	refCmd := "redis-benchmark " + strings.Join(refArgs, " ")
	m := regexp.MustCompile(`([0-9.]+) requests per second`).FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return fmt.Errorf("redis-benchmark output: %s", out)
	}
	refRate, _ := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	ref := Ref{Name: "redis-benchmark GEOADD pipelined (-P 50 -c 50)", Value: refRate, Unit: "GEOADD/s"}
	logf("reference: %s → %.0f/s", refCmd, refRate)
	sc.rdb.Del(ctx, "bench:ref:geoadd")
	for _, tr := range []string{"ws", "rest"} {
		r, cpu, err := sc.transport(ctx, tr)
		if err != nil {
			return err
		}
		rate := float64(r.Accepted) / r.Seconds
		cmd := fmt.Sprintf("%s -only ingest  # %d drivers over %s in %d processes (%s), batches of %d pings, closed loop (next batch after the ack) for %s; pings/s = accepted pings / window; reference: %s",
			benchrunBin, ingestDrivers, strings.ToUpper(tr), ingestProcs, map[string]string{"ws": "one WebSocket per driver", "rest": "100 keep-alive connections per process"}[tr],
			sc.cfg.batch, sc.cfg.ingestDur, refCmd)
		s := Scenario{Name: "1 ingest " + strings.ToUpper(tr), Metric: "pings/s accepted", Value: round1(rate), Unit: "pings/s", Reference: ref, Command: cmd,
			Extra: map[string]any{"batches": r.Batches, "accepted": r.Accepted, "duplicates": r.Dups, "rejected": r.Rejected, "errors": r.Errors,
				"error_sample": r.ErrSample, "connected": r.Connected, "server_cpu_pct_of_core": round1(cpu), "batch": sc.cfg.batch}}
		if tr == "ws" {
			s.Target, s.Met = ">= 100000", rate >= 100000 && r.Connected == ingestDrivers
		} else {
			s.Target, s.Met = "none", true
		}
		sc.rec.add(s)
	}
	return nil
}

// transport runs the ingest processes over tr ("ws" or "rest") for the
// window and sums their reports; the float is the server's CPU (% of one
// core) over the window.
func (sc *ingestScenario) transport(ctx context.Context, tr string) (IngestResult, float64, error) {
	return sc.transportAs(ctx, tr, tr)
}

// transportAs is transport with drivers named name<n> (a second window on
// the same server needs fresh drivers: seqs start at 1 again).
func (sc *ingestScenario) transportAs(ctx context.Context, tr, name string) (IngestResult, float64, error) {
	var sum IngestResult
	type child struct {
		cmd *exec.Cmd
		in  interface{ Write([]byte) (int, error) }
		out *bufio.Reader
	}
	var kids []child
	defer func() {
		for _, k := range kids {
			killGroup(k.cmd)
		}
	}()
	per := ingestDrivers / ingestProcs
	for p := 0; p < ingestProcs; p++ {
		cmd := command(ctx, sc.self, "ingest", "-transport", tr, "-addr", sc.addr(), "-drivers", strconv.Itoa(per),
			"-first", strconv.Itoa(p*per), "-name", name, "-batch", strconv.Itoa(sc.cfg.batch), "-duration", sc.cfg.ingestDur.String())
		cmd.Env = append(os.Environ(), "BENCH_SECRET="+sc.secret)
		ef, err := os.Create(filepath.Join(sc.cfg.dir, fmt.Sprintf("ingest-%s-%d.log", name, p)))
		if err != nil {
			return sum, 0, err
		}
		defer ef.Close()
		cmd.Stderr = ef
		in, _ := cmd.StdinPipe()
		so, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			return sum, 0, err
		}
		kids = append(kids, child{cmd: cmd, in: in, out: bufio.NewReader(so)})
	}
	for i, k := range kids {
		line, err := await(ctx, fmt.Sprintf("ingest %s process %d: connecting %d drivers", tr, i, per), func() (string, error) { return k.out.ReadString('\n') })
		if err != nil {
			return sum, 0, fmt.Errorf("%w (see %s)", err, sc.cfg.dir)
		}
		logf("ingest %s process %d: %s", tr, i, strings.TrimSpace(line))
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return sum, 0, err
	}
	pid := sc.srv.pid()
	c0, t0 := cpuTicks(pid), time.Now()
	for _, k := range kids {
		if _, err := k.in.Write([]byte("go\n")); err != nil {
			return sum, 0, err
		}
	}
	if err := sleepCtx(ctx, sc.cfg.ingestDur/3); err != nil {
		return sum, 0, err
	}
	prof := sc.rec.profile(ctx, "ingest-"+name, sc.cfg.ingestDur/3)
	defer func() { <-prof }()
	if err := sleepCtx(ctx, sc.cfg.ingestDur-time.Since(t0)); err != nil {
		return sum, 0, err
	}
	cpu := float64(cpuTicks(pid)-c0) / time.Since(t0).Seconds()
	for i, k := range kids {
		r, err := await(ctx, fmt.Sprintf("ingest %s process %d: the report after the %s window", tr, i, sc.cfg.ingestDur),
			func() (IngestResult, error) { var r IngestResult; return r, json.NewDecoder(k.out).Decode(&r) })
		if err != nil {
			return sum, 0, err
		}
		sum.Drivers += r.Drivers
		sum.Connected += r.Connected
		sum.Batches += r.Batches
		sum.Accepted += r.Accepted
		sum.Dups += r.Dups
		sum.Rejected += r.Rejected
		sum.Errors += r.Errors
		sum.Seconds = r.Seconds
		if sum.ErrSample == "" {
			sum.ErrSample = r.ErrSample
		}
	}
	return sum, cpu, nil
}
