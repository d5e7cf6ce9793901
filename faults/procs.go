package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/deploy"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Proc is a child process with its output in a log file.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// StartProc starts bin with args and env (added to the environment),
// writing stdout and stderr to logPath.
func StartProc(name, logPath, bin string, args, env []string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl-C of the test does not hit it first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{}), log: f}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Alive reports whether the process has not exited.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends sig and waits up to wait for the exit, then SIGKILLs. It
// reports whether it had to kill, and the exit error (nil: a clean exit).
func (p *Proc) Stop(sig syscall.Signal, wait time.Duration) (killed bool, err error) {
	if !p.Alive() {
		return false, p.err
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return false, p.err
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
		return true, p.err
	}
}

// OpenFiles counts the process's open file descriptors (Linux /proc).
func (p *Proc) OpenFiles() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Pid()))
	if err != nil {
		return -1
	}
	return len(ents)
}

// waitPing waits until a Redis on addr answers PING.
func waitPing(ctx context.Context, addr string, p *Proc) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	for {
		if err := c.Ping(ctx).Err(); err == nil {
			return nil
		}
		if p != nil && !p.Alive() {
			return fmt.Errorf("redis %s exited: %w", addr, p.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis %s did not answer: %w", addr, ctx.Err())
		case <-time.After(30 * time.Millisecond):
		}
	}
}

// Redis is one redis-server process (standalone or a cluster master).
type Redis struct {
	Addr string
	Dir  string
	args []string
	proc *Proc
}

// StartRedis starts a standalone redis-server on a spare port with its
// data in dir. aof turns on the append-only file with appendfsync always,
// so every acknowledged write survives a kill -9.
func StartRedis(ctx context.Context, dir string, aof bool) (*Redis, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--protected-mode", "no", "--maxclients", "4000"}
	if aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, args: args}
	return r, r.Start(ctx)
}

// Start (re)starts the process on the same port and directory and waits
// until it answers.
func (r *Redis) Start(ctx context.Context) error {
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return err
	}
	p, err := StartProc("redis "+r.Addr, filepath.Join(r.Dir, "redis.log"), "redis-server", r.args, nil)
	if err != nil {
		return err
	}
	r.proc = p
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return waitPing(wctx, r.Addr, p)
}

// Kill sends SIGKILL and waits for the exit.
func (r *Redis) Kill() {
	if r.proc != nil {
		_, _ = r.proc.Stop(syscall.SIGKILL, 5*time.Second)
	}
}

// Close stops the process (SIGTERM, then SIGKILL).
func (r *Redis) Close() {
	if r.proc != nil {
		_, _ = r.proc.Stop(syscall.SIGTERM, 5*time.Second)
	}
}

// Cluster is a throwaway Redis Cluster of masters without replicas.
type Cluster struct {
	Masters []*Redis
}

// StartCluster starts n cluster-enabled redis-servers under dir and joins
// them with `redis-cli --cluster create` (slots split evenly).
func StartCluster(ctx context.Context, dir string, n int) (*Cluster, error) {
	c := &Cluster{}
	var addrs []string
	for i := range n {
		port, err := FreePort()
		if err != nil {
			c.Close()
			return nil, err
		}
		nd := filepath.Join(dir, fmt.Sprintf("redis-%d", i))
		r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: nd, args: []string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", nd, "--save", "", "--appendonly", "no",
			"--protected-mode", "no", "--maxclients", "4000",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(nd, "nodes.conf"),
			"--cluster-node-timeout", "5000"}}
		if err := r.Start(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c.Masters = append(c.Masters, r)
		addrs = append(addrs, r.Addr)
	}
	out, err := exec.CommandContext(ctx, "redis-cli", append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	for _, a := range addrs {
		rc := redis.NewClient(&redis.Options{Addr: a})
		for i := 0; ; i++ {
			info, _ := rc.ClusterInfo(ctx).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if i > 400 || ctx.Err() != nil {
				rc.Close()
				c.Close()
				return nil, fmt.Errorf("cluster not ok on %s: %s", a, info)
			}
			time.Sleep(25 * time.Millisecond)
		}
		rc.Close()
	}
	return c, nil
}

// Addrs are the masters' addresses.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, m := range c.Masters {
		a = append(a, m.Addr)
	}
	return a
}

// URL is the hextrack Redis URL of the cluster.
func (c *Cluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs(), ",") }

// Client is a go-redis client of the cluster (the suite's view of the
// truth: the streams).
func (c *Cluster) Client() redis.UniversalClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
}

// Close stops every master.
func (c *Cluster) Close() {
	for _, m := range c.Masters {
		m.Close()
	}
}

// KillPubSub runs CLIENT KILL TYPE pubsub on every master and returns how
// many connections were killed.
func KillPubSub(ctx context.Context, addrs []string) (int, error) {
	n := 0
	for _, a := range addrs {
		rc := redis.NewClient(&redis.Options{Addr: a})
		k, err := rc.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Int()
		rc.Close()
		if err != nil {
			return n, fmt.Errorf("client kill on %s: %w", a, err)
		}
		n += k
	}
	return n, nil
}

// NodeConfig is what every hextrack node of a scenario shares.
type NodeConfig struct {
	Bin      string // the hextrack binary
	RedisURL string
	Prefix   string        // HEXTRACK_KEY_PREFIX
	Secret   string        // HEXTRACK_JWT_SECRET, the same on every node
	Drain    time.Duration // HEXTRACK_DRAIN_WINDOW
	Env      []string      // more environment
}

// Node is one hextrack process on a fixed loopback port; it can be killed
// and started again on the same port.
type Node struct {
	Name string
	Addr string
	Dir  string
	cfg  NodeConfig
	mu   sync.Mutex
	proc *Proc
	// RedisURL overrides cfg.RedisURL (a node behind a Proxy).
	RedisURL string
}

// NewNode prepares a node listening on a spare port; Start runs it.
func NewNode(name, dir string, cfg NodeConfig) (*Node, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Node{Name: name, Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, cfg: cfg}, nil
}

// URL is the node's base URL (bypassing nginx).
func (n *Node) URL() string { return "http://" + n.Addr }

// Proc is the current process (nil before Start).
func (n *Node) Proc() *Proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Start starts the process and waits until /readyz answers 200.
func (n *Node) Start(ctx context.Context) error {
	url := n.cfg.RedisURL
	if n.RedisURL != "" {
		url = n.RedisURL
	}
	drain := n.cfg.Drain
	if drain <= 0 {
		drain = 2 * time.Second
	}
	env := append([]string{
		"HEXTRACK_ADDR=" + n.Addr,
		"HEXTRACK_REDIS_URL=" + url,
		"HEXTRACK_DEV=1",
		"HEXTRACK_JWT_SECRET=" + n.cfg.Secret,
		"HEXTRACK_KEY_PREFIX=" + n.cfg.Prefix,
		"HEXTRACK_DRAIN_WINDOW=" + drain.String(),
		"HEXTRACK_LOG_LEVEL=warn",
		// The node's archive in its own folder, not the user's data dir.
		"HEXTRACK_DATA_DIR=" + filepath.Join(n.Dir, "data"),
	}, n.cfg.Env...)
	p, err := StartProc(n.Name, filepath.Join(n.Dir, "hextrack.log"), n.cfg.Bin, []string{"serve"}, env)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if st, _ := n.Ready(wctx); st == http.StatusOK {
			return nil
		}
		if !p.Alive() {
			return fmt.Errorf("%s exited at start: %w (log %s)", n.Name, p.err, filepath.Join(n.Dir, "hextrack.log"))
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("%s not ready: %w", n.Name, wctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Ready returns the status of GET /readyz on the node itself (0 when it
// does not answer) and the body.
func (n *Node) Ready(ctx context.Context) (int, string) {
	return get(ctx, n.URL()+"/readyz")
}

func get(ctx context.Context, url string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// Metric reads one unlabelled sample from the node's /metrics (-1 when
// unavailable).
func (n *Node) Metric(ctx context.Context, name string) float64 {
	st, body := get(ctx, n.URL()+"/metrics")
	if st != http.StatusOK {
		return -1
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// Kill sends SIGKILL (kill -9) and waits for the exit.
func (n *Node) Kill() {
	if p := n.Proc(); p != nil {
		_, _ = p.Stop(syscall.SIGKILL, 5*time.Second)
	}
}

// Term sends SIGTERM and waits up to wait for the drain and exit. It
// reports whether the node had to be killed, and the exit error.
func (n *Node) Term(wait time.Duration) (killed bool, err error) {
	p := n.Proc()
	if p == nil {
		return false, nil
	}
	return p.Stop(syscall.SIGTERM, wait)
}

// Nginx is nginx in front of the nodes (deploy.Local's configuration).
type Nginx struct {
	Listen string
	Dir    string
	proc   *Proc
}

// StartNginx renders deploy.Local for upstreams into dir and starts nginx.
func StartNginx(ctx context.Context, dir string, upstreams ...string) (*Nginx, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := deploy.Local(listen, dir, upstreams...)
	cfg.WorkerProcesses = 1 // two cores shared with everything else
	var buf bytes.Buffer
	if err := cfg.Render(&buf); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
		if err != nil {
			return nil, errors.New("nginx is not installed")
		}
	}
	p, err := StartProc("nginx", filepath.Join(dir, "nginx.out"), bin,
		[]string{"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"}, nil)
	if err != nil {
		return nil, err
	}
	ng := &Nginx{Listen: listen, Dir: dir, proc: p}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", listen, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return ng, nil
		}
		if !p.Alive() || time.Now().After(deadline) {
			ng.Close()
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx did not start: %w\n%s", err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is nginx's base URL.
func (g *Nginx) URL() string { return "http://" + g.Listen }

// Close stops nginx with SIGTERM to the master (never SIGKILL: that would
// leave the workers running).
func (g *Nginx) Close() {
	if g.proc != nil {
		// After a forced kill of the master its workers notice and exit.
		_, _ = g.proc.Stop(syscall.SIGTERM, 10*time.Second)
	}
}
