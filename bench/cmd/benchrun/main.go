package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	// SIGTERM/SIGINT end ctx: every wait returns, the children are stopped
	// (servers by process group, load generators killed) and benchrun
	// exits without writing results. A second signal kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "ref":
			return runRef(ctx, args[1:])
		case "riders":
			return runRiders(ctx, args[1:], stdout)
		case "ingest":
			return runIngest(ctx, args[1:], stdout)
		}
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
	return orchestrate(ctx, args, stdout)
}

type config struct {
	only        map[string]bool
	out         string
	dir         string
	server      string        // hextrack binary (built with -tags pprof)
	redisPort   int           // 0: a free port
	port        int           // hextrack's; 0: a free port
	pprofPort   int           // hextrack's pprof side listener; 0: a free port
	deadlineAll time.Duration // every scenario's deadline; 0: config.deadline's
	batch       int
	ingestDur   time.Duration
	fanDur      time.Duration
	pollDur     time.Duration
	trips       int
	quick       bool
	archiveDB   string // the archive scenario's PostgreSQL (a schema of its own)
}

const prefix = "bench:"

func orchestrate(ctx context.Context, args []string, stdout io.Writer) error {
	var c config
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	only := fs.String("only", "", "comma-separated scenarios: poll,resume,nearby,idle,fanout,ingest,archive,nats,eventsout,zones (default all)")
	fs.StringVar(&c.out, "out", "bench/results.json", "results JSON")
	fs.StringVar(&c.dir, "dir", "bench/out", "logs and profiles")
	fs.StringVar(&c.server, "server", "bench/bin/hextrack", "hextrack binary (go build -tags pprof)")
	fs.IntVar(&c.redisPort, "redis-port", 0, "port of the dedicated redis-server the bench starts (0: a free port)")
	fs.IntVar(&c.port, "port", 0, "hextrack port (0: a free port)")
	fs.IntVar(&c.pprofPort, "pprof-port", 0, "hextrack's pprof port (0: a free port)")
	fs.DurationVar(&c.deadlineAll, "deadline", 0, "deadline of each scenario, after which it fails naming what it waited for (0: from its windows, 3-10 min)")
	fs.IntVar(&c.batch, "batch", 50, "pings per ingest batch")
	fs.DurationVar(&c.ingestDur, "ingest-duration", 60*time.Second, "ingest measurement window per transport")
	fs.DurationVar(&c.fanDur, "fanout-duration", 30*time.Second, "fan-out measurement window")
	fs.DurationVar(&c.pollDur, "poll-duration", 10*time.Second, "polling measurement window per endpoint")
	fs.IntVar(&c.trips, "trips", 4750, "fan-out trips (4 SSE riders each)")
	fs.StringVar(&c.archiveDB, "archive-db", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL of the archive scenario (it creates a schema of its own and drops it after)")
	fs.BoolVar(&c.quick, "quick", false, "short windows and small counts (a smoke run, not results)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.quick {
		c.ingestDur, c.fanDur, c.pollDur, c.trips = 20*time.Second, 10*time.Second, 5*time.Second, 500
	}
	if *only != "" {
		c.only = map[string]bool{}
		for _, s := range strings.Split(*only, ",") {
			c.only[strings.TrimSpace(s)] = true
		}
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	free, err := freePorts(3)
	if err != nil {
		return err
	}
	for i, p := range []*int{&c.redisPort, &c.port, &c.pprofPort} {
		if *p == 0 {
			*p = free[i]
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sb := make([]byte, 32)
	_, _ = rand.Read(sb)
	sv := newServers(c, self, hex.EncodeToString(sb))
	rec := newRecorder(c, sv.pprofURL())
	start := time.Now()
	defer sv.stopAll()
	if err := sv.startRedis(ctx); err != nil {
		return err
	}
	logf("ports: redis %d, hextrack %d, pprof %d", c.redisPort, c.port, c.pprofPort)
	r := rig{servers: sv, rec: rec}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"poll", (&pollScenario{rig: r}).run},
		{"resume", (&resumeScenario{rig: r}).run},
		{"nearby", (&nearbyScenario{rig: r}).run},
		{"idle", (&fanoutScenario{rig: r}).run}, // idle SSE (4) then fan-out (3) on the same connections
		{"ingest", (&ingestScenario{rig: r}).run},
		{"archive", (&archiveScenario{rig: r}).run}, // the fan-out load again, archived in PostgreSQL
		{"nats", (&natsScenario{rig: r}).run},
		{"eventsout", (&eventsOutScenario{rig: r}).run}, // webhooks: archive, route, deliver
		{"zones", (&zonesScenario{rig: r}).run},         // ingest with 1,000 zones against none
	}
	for _, s := range steps {
		if c.only != nil && !c.only[s.name] && !(s.name == "idle" && c.only["fanout"]) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		logf("== %s (load average %s, deadline %s)", s.name, loadavg(), c.deadline(s.name))
		rec.res.Machine["loadavg_before_"+s.name] = loadavg()
		t := time.Now()
		sctx, cancel := withDeadline(ctx, s.name, c.deadline(s.name))
		err := s.fn(sctx)
		if cause := context.Cause(sctx); err != nil && errors.Is(cause, errDeadline) && !errors.Is(err, errDeadline) {
			err = fmt.Errorf("%w (%v)", err, cause) // say which deadline ended the wait
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			logf("%s: FAILED: %v", s.name, err)
			rec.failed(s.name, err)
		}
		sv.stopServer()
		logf("== %s done in %s", s.name, time.Since(t).Round(time.Second))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted by a signal: children stopped, %s not written", c.out)
	}
	rec.res.Seconds = time.Since(start).Seconds()
	if c.only != nil {
		if err := rec.keepOthers(); err != nil {
			return err
		}
	}
	return rec.write(stdout)
}

// rig is what every scenario is given: the servers it starts, measures
// and mints tokens for, and the recorder of its rows and profiles.
type rig struct {
	*servers
	rec *recorder
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", a...)
}

// loadavg is /proc/loadavg's first three fields: the machine is shared,
// and a busy neighbour shows here.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func machine() map[string]any {
	m := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "os": runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m["cpu"] = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l := strings.SplitN(string(b), "\n", 2)[0]; l != "" {
			m["mem"] = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		m["redis"] = strings.TrimSpace(string(out))
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m["nofile"] = rl.Cur
	}
	return m
}
