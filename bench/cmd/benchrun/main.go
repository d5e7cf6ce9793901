package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
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

// Ref is a scenario's reference figure, measured in the same run.
type Ref struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Scenario is one row of the results.
type Scenario struct {
	Name      string         `json:"name"`
	Metric    string         `json:"metric"`
	Value     float64        `json:"value"`
	Unit      string         `json:"unit"`
	Target    string         `json:"target"`
	Met       bool           `json:"met"`
	Reference Ref            `json:"reference"`
	Command   string         `json:"command"`
	Notes     string         `json:"notes,omitempty"`
	Extra     map[string]any `json:"extra,omitempty"`
}

// Results is bench/results.json.
type Results struct {
	Machine   map[string]any `json:"machine"`
	Started   time.Time      `json:"started"`
	Seconds   float64        `json:"seconds"`
	Scenarios []Scenario     `json:"scenarios"`
	Profiles  map[string]any `json:"profiles,omitempty"`
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
}

type bench struct {
	cfg     config
	self    string
	secret  string
	auth    *api.Auth
	redis   *proc
	rdb     *redis.Client
	srv     *proc
	srvEnv  []string
	res     Results
	profMu  sync.Mutex // res.Profiles
	cmdline string
}

const prefix = "bench:"

func orchestrate(ctx context.Context, args []string, stdout io.Writer) error {
	var c config
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	only := fs.String("only", "", "comma-separated scenarios: poll,resume,nearby,idle,fanout,ingest (default all)")
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
	b := &bench{cfg: c, self: self, secret: hex.EncodeToString(sb)}
	b.auth = api.NewAuth([]byte(b.secret))
	b.cmdline = "bench/bin/benchrun " + strings.Join(args, " ")
	b.res = Results{Machine: machine(), Started: time.Now().UTC(), Profiles: map[string]any{}}
	start := time.Now()
	defer b.stopAll()
	if err := b.startRedis(ctx); err != nil {
		return err
	}
	logf("ports: redis %d, hextrack %d, pprof %d", c.redisPort, c.port, c.pprofPort)
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"poll", b.scenarioPoll},
		{"resume", b.scenarioResume},
		{"nearby", b.scenarioNearby},
		{"idle", b.scenarioIdleFanout}, // idle SSE (4) then fan-out (3) on the same connections
		{"ingest", b.scenarioIngest},
	}
	for _, s := range steps {
		if c.only != nil && !c.only[s.name] && !(s.name == "idle" && c.only["fanout"]) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		logf("== %s (load average %s, deadline %s)", s.name, loadavg(), c.deadline(s.name))
		b.res.Machine["loadavg_before_"+s.name] = loadavg()
		t := time.Now()
		sctx, cancel := withDeadline(ctx, s.name, c.deadline(s.name))
		err := s.fn(sctx)
		if cause := context.Cause(sctx); err != nil && errors.Is(cause, errDeadline) && !errors.Is(err, errDeadline) {
			err = fmt.Errorf("%w (%v)", err, cause) // say which deadline ended the wait
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			logf("%s: FAILED: %v", s.name, err)
			b.res.Scenarios = append(b.res.Scenarios, Scenario{Name: s.name, Metric: "error", Notes: err.Error(), Command: b.cmd(s.name)})
		}
		b.stopServer()
		logf("== %s done in %s", s.name, time.Since(t).Round(time.Second))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted by a signal: children stopped, %s not written", c.out)
	}
	b.res.Seconds = time.Since(start).Seconds()
	return b.write(stdout)
}

func (b *bench) cmd(only string) string {
	return "scripts/bench.sh -only " + only
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

func (b *bench) startRedis(ctx context.Context) error {
	addr := fmt.Sprintf("127.0.0.1:%d", b.cfg.redisPort)
	if portTaken(addr) {
		return fmt.Errorf("port %d is taken: the bench starts its own redis-server there (pick another with -redis-port, or 0 for a free one)", b.cfg.redisPort)
	}
	p, err := startProc("redis", filepath.Join(b.cfg.dir, "redis.log"), nil, "redis-server",
		"--port", fmt.Sprint(b.cfg.redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--maxclients", "10000", "--protected-mode", "no")
	if err != nil {
		return err
	}
	b.redis = p
	if err := waitPort(ctx, p, addr, 10*time.Second); err != nil {
		return err
	}
	b.rdb = redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	return nil
}

// baseEnv configures the server for load: limits off or high (the
// security defaults would throttle a benchmark's single-IP load), the
// bench's own secret, pprof on a side port (build tag pprof).
func (b *bench) baseEnv() []string {
	return []string{
		fmt.Sprintf("HEXTRACK_ADDR=127.0.0.1:%d", b.cfg.port),
		fmt.Sprintf("HEXTRACK_REDIS_URL=redis://127.0.0.1:%d/0", b.cfg.redisPort),
		"HEXTRACK_DEV=1", "HEXTRACK_JWT_SECRET=" + b.secret, "HEXTRACK_KEY_PREFIX=" + prefix,
		"HEXTRACK_LOG_LEVEL=warn", fmt.Sprintf("HEXTRACK_PPROF_ADDR=127.0.0.1:%d", b.cfg.pprofPort),
		"HEXTRACK_PING_RATE=-1", "HEXTRACK_ACTION_RATE=-1", "HEXTRACK_IP_ACTION_RATE=-1",
		"HEXTRACK_IP_STREAM_RATE=-1", "HEXTRACK_STREAM_RATE=-1", "HEXTRACK_MAX_STREAMS=19700",
	}
}

// startServer flushes the bench Redis and starts a fresh hextrack.
func (b *bench) startServer(ctx context.Context, name string, extra ...string) error {
	b.stopServer()
	if err := b.rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	if portTaken(b.addr()) {
		return fmt.Errorf("hextrack's port %d is taken (pick another with -port, or 0 for a free one)", b.cfg.port)
	}
	b.srvEnv = append(b.baseEnv(), extra...)
	p, err := startProc("hextrack", filepath.Join(b.cfg.dir, "hextrack-"+name+".log"), b.srvEnv, b.cfg.server)
	if err != nil {
		return err
	}
	b.srv = p
	if err := waitHTTP(ctx, p, b.base()+"/readyz", 60*time.Second); err != nil {
		return fmt.Errorf("hextrack: %w (see %s)", err, p.log.Name())
	}
	return nil
}

func (b *bench) stopServer() {
	if b.srv != nil {
		b.srv.stop(15 * time.Second)
		b.srv = nil
	}
}

func (b *bench) stopAll() {
	b.stopServer()
	if b.rdb != nil {
		b.rdb.Close()
	}
	if b.redis != nil {
		b.redis.stop(5 * time.Second)
	}
}

func (b *bench) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.cfg.port) }
func (b *bench) base() string { return "http://" + b.addr() }

// pprofURL is the server's pprof side listener.
func (b *bench) pprofURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", b.cfg.pprofPort)
}

func (b *bench) token(role, sub string) string {
	t, err := b.auth.Mint(api.TokenRequest{Role: role, Sub: sub, TTL: 6 * time.Hour})
	if err != nil {
		panic(err)
	}
	return t
}

func (b *bench) add(s Scenario) {
	if s.Command == "" {
		s.Command = b.cmd(s.Name)
	}
	b.res.Scenarios = append(b.res.Scenarios, s)
	mark := "MISS"
	if s.Met {
		mark = "ok"
	}
	logf("%s %s = %.3g %s (target %s: %s; reference %s = %.3g %s)", s.Name, s.Metric, s.Value, s.Unit, s.Target, mark,
		s.Reference.Name, s.Reference.Value, s.Reference.Unit)
}

// profile takes a CPU profile of the server for d and an allocation
// profile, saves both and remembers their top entries.
func (b *bench) profile(ctx context.Context, name string, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); b.takeProfile(ctx, name, d) }()
	return done
}

func (b *bench) takeProfile(ctx context.Context, name string, d time.Duration) {
	cpu := filepath.Join(b.cfg.dir, name+".cpu.pprof")
	allocs := filepath.Join(b.cfg.dir, name+".allocs.pprof")
	url := b.pprofURL()
	if err := fetch(ctx, fmt.Sprintf("%sprofile?seconds=%d", url, int(d.Seconds())), cpu); err != nil {
		logf("profile %s: %v", name, err)
		return
	}
	if err := fetch(ctx, url+"allocs", allocs); err != nil {
		logf("profile %s: %v", name, err)
	}
	b.profMu.Lock()
	defer b.profMu.Unlock()
	b.res.Profiles[name] = map[string]string{"cpu": cpu, "allocs": allocs,
		"cpu_top":         pprofTop(b.cfg.server, cpu, 25),
		"cpu_top_cum":     pprofTop(b.cfg.server, cpu, 25, "-cum"),
		"alloc_space_top": pprofTop(b.cfg.server, allocs, 15, "-sample_index=alloc_space")}
}

func (b *bench) write(stdout io.Writer) error {
	f, err := os.Create(b.cfg.out)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b.res); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	printTable(stdout, b.res)
	fmt.Fprintf(stdout, "\nwritten %s (%.0f s); logs and profiles in %s\n", b.cfg.out, b.res.Seconds, b.cfg.dir)
	return nil
}

func printTable(w io.Writer, r Results) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tmetric\tvalue\ttarget\tmet\treference")
	for _, s := range r.Scenarios {
		met := "MISS"
		if s.Met {
			met = "yes"
		}
		if s.Target == "none" {
			met = "-"
		}
		ref := ""
		if s.Reference.Name != "" {
			ref = fmt.Sprintf("%s: %s %s", s.Reference.Name, num(s.Reference.Value), s.Reference.Unit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\n", s.Name, s.Metric, num(s.Value), s.Unit, s.Target, met, ref)
	}
	tw.Flush()
	for _, s := range r.Scenarios {
		if !s.Met && s.Target != "none" {
			fmt.Fprintf(w, "\nMISS %s %s — profile tops in results.json \"profiles\"\n", s.Name, s.Metric)
		}
	}
}

func num(f float64) string {
	switch {
	case f >= 1000:
		return fmt.Sprintf("%.0f", f)
	case f >= 100:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.3g", f)
	}
}
