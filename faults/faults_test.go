//go:build faults

package faults_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/faults"
)

// bin is the hextrack binary, built once for the whole suite.
var bin string

// verdicts are printed together at the end, one line per scenario.
var verdicts []string

func TestMain(m *testing.M) {
	for _, tool := range []string{"redis-server", "redis-cli", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err2 := os.Stat("/usr/sbin/" + tool); err2 != nil {
				fmt.Fprintf(os.Stderr, "faults: %s is not installed (apt-get install redis-server nginx)\n", tool)
				os.Exit(1)
			}
		}
	}
	dir, err := os.MkdirTemp("", "hextrack-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "hextrack")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/hextrack/hextrack/cmd/hextrack").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: build hextrack: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	fmt.Println("---- fault suite verdicts ----")
	for _, v := range verdicts {
		fmt.Println(v)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

const secret = "faults-suite-secret-0123456789abcdef0123456789"

// env is one scenario's system: Redis, nodes, nginx, load.
type env struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	cluster *faults.Cluster
	redis   *faults.Redis
	rdb     redis.UniversalClient
	nodes   []*faults.Node
	nginx   *faults.Nginx
	load    *faults.Load
	name    string
	prefix  string // the nodes' HEXTRACK_KEY_PREFIX
}

type envConfig struct {
	cluster bool // 3-master Cluster; false: standalone Redis with AOF
	nodes   int
	pairs   int
	// proxied: node index whose Redis goes through a Proxy (-1: none).
	proxied int
	// env is more environment for every node (e.g. HEXTRACK_DATABASE_URL).
	env []string
}

func randID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newEnv(t *testing.T, name string, cfg envConfig) (*env, *faults.Proxy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, dir: t.TempDir(), name: name}
	var url string
	if cfg.cluster {
		c, err := faults.StartCluster(ctx, e.dir, 3)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		e.cluster, e.rdb, url = c, c.Client(), c.URL()
	} else {
		r, err := faults.StartRedis(ctx, filepath.Join(e.dir, "redis"), true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		e.redis, url = r, "redis://"+r.Addr
		e.rdb = redis.NewClient(&redis.Options{Addr: r.Addr})
	}
	t.Cleanup(func() { _ = e.rdb.Close() })
	var proxy *faults.Proxy
	if cfg.proxied >= 0 {
		var err error
		if proxy, err = faults.NewProxy(e.redis.Addr); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proxy.Close)
	}
	id := randID()
	e.prefix = "hx" + id + ":"
	var ups []string
	for i := range cfg.nodes {
		n, err := faults.NewNode(fmt.Sprintf("node%d", i), filepath.Join(e.dir, fmt.Sprintf("node%d", i)), faults.NodeConfig{
			Bin: bin, RedisURL: url, Prefix: e.prefix, Secret: secret, Drain: 2 * time.Second,
			Env: append([]string{"HEXTRACK_DISPATCH_LEASE=2s"}, cfg.env...)})
		if err != nil {
			t.Fatal(err)
		}
		if i == cfg.proxied {
			n.RedisURL = "redis://" + proxy.Addr
		}
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if p := n.Proc(); p != nil && p.Alive() {
				n.Term(10 * time.Second)
			}
			if t.Failed() {
				b, _ := os.ReadFile(filepath.Join(n.Dir, "hextrack.log"))
				t.Logf("%s log (last 3000 bytes):\n%s", n.Name, tail(b, 3000))
			}
		})
		e.nodes = append(e.nodes, n)
		ups = append(ups, n.Addr)
	}
	ng, err := faults.StartNginx(ctx, filepath.Join(e.dir, "nginx"), ups...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ng.Close)
	e.nginx = ng
	l, err := faults.StartLoad(ctx, faults.LoadConfig{Base: ng.URL(), Pairs: cfg.pairs, ID: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	e.load = l
	// Some traffic before the fault.
	time.Sleep(2 * time.Second)
	return e, proxy
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// verdict verifies the load against the streams and records one line.
func (e *env) verdict(letter, name string, recovery string, extra string, fail []string) {
	e.record(letter, name, recovery, extra, fail, e.verify(), 0, 0)
}

// verify stops the riders' posting and checks what the clients received
// against the streams.
func (e *env) verify() faults.Result {
	r, err := e.load.Verify(e.ctx, e.rdb, e.prefix, 20*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// record prints and keeps the verdict line of r; lost and dup add what
// else the scenario found lost or duplicated (the archive's).
func (e *env) record(letter, name, recovery, extra string, fail []string, r faults.Result, lost, dup int) {
	if r.Lost > 0 || r.Duplicated > 0 || r.OutOfOrder > 0 || r.AckedMissed > 0 {
		fail = append(fail, fmt.Sprintf("lost=%d dup=%d ooo=%d acked_missing=%d %v", r.Lost, r.Duplicated, r.OutOfOrder, r.AckedMissed, r.Examples))
	}
	if r.Received == 0 {
		fail = append(fail, "no events received")
	}
	status := "PASS"
	if len(fail) > 0 {
		status = "FAIL"
	}
	line := fmt.Sprintf("FAULT %s %s: %s clients=%d events=%d lost=%d dup=%d resets=%d recovery=%s%s",
		letter, name, status, e.load.Clients(), r.Received, r.Lost+r.AckedMissed+lost, r.Duplicated+dup, r.Resets, recovery, extra)
	verdicts = append(verdicts, line)
	fmt.Println(line)
	for _, f := range fail {
		e.t.Error(f)
	}
}

// TestFaultKillNode (a): kill -9 one node under load.
func TestFaultKillNode(t *testing.T) {
	e, _ := newEnv(t, "kill-node", envConfig{cluster: true, nodes: 3, pairs: 20, proxied: -1})
	var fail []string
	victim := e.nodes[1]
	before := victim.Metric(e.ctx, "hextrack_sse_streams")
	e.load.Mark()
	victim.Kill()
	rec, err := e.load.Recovered(e.ctx, 20*time.Second)
	if err != nil {
		fail = append(fail, err.Error())
	} else if rec > 10*time.Second {
		fail = append(fail, fmt.Sprintf("recovery %s > 10s", rec))
	}
	time.Sleep(2 * time.Second) // traffic after the recovery
	e.verdict("a", "kill-node", faults.Round(rec), fmt.Sprintf(" victim_streams=%.0f", before), fail)
}

// TestFaultRollingRestart (b): SIGTERM (drain), restart, wait ready — for
// every node in turn, under load.
func TestFaultRollingRestart(t *testing.T) {
	e, _ := newEnv(t, "rolling-restart", envConfig{cluster: true, nodes: 3, pairs: 20, proxied: -1})
	var fail []string
	var worst time.Duration
	var steps []string
	for _, n := range e.nodes {
		e.load.Mark()
		start := time.Now()
		killed, err := n.Term(15 * time.Second)
		if killed {
			fail = append(fail, n.Name+" did not exit after SIGTERM within 15s")
		} else if err != nil {
			fail = append(fail, fmt.Sprintf("%s exit: %v", n.Name, err))
		}
		exit := time.Since(start)
		if err := n.Start(e.ctx); err != nil {
			t.Fatal(err)
		}
		rec, err := e.load.Recovered(e.ctx, 20*time.Second)
		if err != nil {
			fail = append(fail, n.Name+": "+err.Error())
		}
		worst = max(worst, rec)
		steps = append(steps, fmt.Sprintf("%s:exit=%s,rec=%s", n.Name, faults.Round(exit), faults.Round(rec)))
		time.Sleep(time.Second)
	}
	if worst > 10*time.Second {
		fail = append(fail, fmt.Sprintf("recovery %s > 10s", worst))
	}
	e.verdict("b", "rolling-restart", faults.Round(worst), " steps="+strings.Join(steps, ";"), fail)
}

// TestFaultRedisRestart (c): a standalone Redis with AOF (appendfsync
// always) killed under load and started again after a few seconds.
func TestFaultRedisRestart(t *testing.T) {
	e, _ := newEnv(t, "redis-restart", envConfig{cluster: false, nodes: 2, pairs: 16, proxied: -1})
	var fail []string
	// Leaks: open files and goroutines of all nodes, with the same clients
	// connected before the outage and after the recovery (clients move
	// between nodes, so only the totals compare).
	fdsBefore, gBefore := 0, 0.0
	for _, n := range e.nodes {
		fdsBefore += n.Proc().OpenFiles()
		gBefore += n.Metric(e.ctx, "go_goroutines")
	}
	e.load.Mark()
	down := time.Now()
	e.redis.Kill()
	// While it is down: every node's /readyz fails, requests get 503s.
	time.Sleep(1500 * time.Millisecond)
	ready503, direct503 := 0, 0
	for _, n := range e.nodes {
		if st, body := n.Ready(e.ctx); st == http.StatusServiceUnavailable {
			ready503++
		} else {
			fail = append(fail, fmt.Sprintf("%s /readyz with Redis down: %d %s", n.Name, st, body))
		}
		// A token needs no Redis; a trip read does.
		st, body := getAuth(e.ctx, n.URL()+"/v1/trips/t_nope", e.token(t, n.URL()))
		if st == http.StatusServiceUnavailable && strings.Contains(body, `"error"`) {
			direct503++
		} else {
			fail = append(fail, fmt.Sprintf("%s GET trip with Redis down: %d %s", n.Name, st, body))
		}
	}
	time.Sleep(1500 * time.Millisecond)
	for _, n := range e.nodes {
		if !n.Proc().Alive() {
			fail = append(fail, n.Name+" crashed while Redis was down")
		}
	}
	if err := e.redis.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	outage := time.Since(down)
	back := time.Now()
	rec, err := e.load.Recovered(e.ctx, 30*time.Second)
	if err != nil {
		fail = append(fail, err.Error())
	}
	// Ready again on its own.
	for _, n := range e.nodes {
		if st, body := n.Ready(e.ctx); st != http.StatusOK {
			fail = append(fail, fmt.Sprintf("%s not ready after Redis came back: %d %s", n.Name, st, body))
		}
	}
	time.Sleep(2 * time.Second)
	fdsAfter, gAfter := 0, 0.0
	for _, n := range e.nodes {
		fdsAfter += n.Proc().OpenFiles()
		gAfter += n.Metric(e.ctx, "go_goroutines")
	}
	leak := fmt.Sprintf(" fds=%d->%d goroutines=%.0f->%.0f", fdsBefore, fdsAfter, gBefore, gAfter)
	// Pools (Redis connections, nginx keep-alive) may grow a little during
	// the reconnect storm; a leak grows with every failed request (hundreds).
	if fdsAfter > fdsBefore+120 || gAfter > 1.5*gBefore+200 {
		fail = append(fail, "resources grew after the outage:"+leak)
	}
	errs := fmt.Sprintf(" outage=%s after_redis_back=%s readyz503=%d/%d direct503=%d/%d client_errors=%v%s",
		faults.Round(outage), faults.Round(rec-back.Sub(down)), ready503, len(e.nodes), direct503, len(e.nodes), e.load.ErrorCounts(), leak)
	e.verdict("c", "redis-restart", faults.Round(rec), errs, fail)
}

// TestFaultKillPubSub (d): CLIENT KILL TYPE pubsub on every master.
func TestFaultKillPubSub(t *testing.T) {
	e, _ := newEnv(t, "kill-pubsub", envConfig{cluster: true, nodes: 3, pairs: 20, proxied: -1})
	var fail []string
	e.load.Mark()
	killed, err := faults.KillPubSub(e.ctx, e.cluster.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		fail = append(fail, "no pub/sub connection was killed")
	}
	rec, err := e.load.Recovered(e.ctx, 20*time.Second)
	if err != nil {
		fail = append(fail, err.Error())
	}
	time.Sleep(2 * time.Second)
	e.verdict("d", "kill-pubsub", faults.Round(rec), fmt.Sprintf(" killed_conns=%d", killed), fail)
}

// TestFaultNodeCutOff (e): one node's Redis proxy is stopped; its clients
// must move to the healthy nodes.
func TestFaultNodeCutOff(t *testing.T) {
	e, proxy := newEnv(t, "node-cut-off", envConfig{cluster: false, nodes: 3, pairs: 20, proxied: 0})
	var fail []string
	victim := e.nodes[0]
	before := victim.Metric(e.ctx, "hextrack_sse_streams")
	e.load.Mark()
	proxy.Cut()
	rec, err := e.load.Recovered(e.ctx, 20*time.Second)
	if err != nil {
		fail = append(fail, err.Error())
	}
	if st, _ := victim.Ready(e.ctx); st != http.StatusServiceUnavailable {
		fail = append(fail, fmt.Sprintf("cut-off node /readyz = %d, want 503", st))
	}
	time.Sleep(2 * time.Second)
	after := victim.Metric(e.ctx, "hextrack_sse_streams")
	if after != 0 {
		fail = append(fail, fmt.Sprintf("cut-off node still holds %.0f SSE streams", after))
	}
	if !victim.Proc().Alive() {
		fail = append(fail, "cut-off node crashed")
	}
	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	e.verdict("e", "node-cut-off", faults.Round(rec), fmt.Sprintf(" victim_streams=%.0f->%.0f", before, after), fail)
}

func (e *env) token(t *testing.T, base string) string {
	st, body := postJSON(e.ctx, base+"/v1/dev/token", `{"role":"ops","sub":"ops1"}`)
	if st != http.StatusOK {
		t.Fatalf("dev token: %d %s", st, body)
	}
	_, after, _ := strings.Cut(body, `"token":"`)
	tok, _, _ := strings.Cut(after, `"`)
	return tok
}

func postJSON(ctx context.Context, url, body string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return do(req)
}

func getAuth(ctx context.Context, url, tok string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	return do(req)
}

func do(req *http.Request) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}
