package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hextrack/hextrack/deploy"
)

var update = flag.Bool("update", false, "rewrite nginx.conf from nginx.conf.tmpl")

func readNginxConf(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile("nginx.conf")
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestNginxConfIsRendered keeps the committed nginx.conf equal to the
// template rendered with deploy.Compose(); -update rewrites it.
func TestNginxConfIsRendered(t *testing.T) {
	var buf bytes.Buffer
	if err := deploy.Compose().Render(&buf); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("nginx.conf", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := readNginxConf(t); got != buf.String() {
		t.Fatal("nginx.conf differs from nginx.conf.tmpl rendered with deploy.Compose(): run go test ./deploy -run TestNginxConfIsRendered -update")
	}
}

// directive is one nginx directive with its block, if any.
type directive struct {
	name  string
	args  []string
	block []*directive
}

// parseNginx reads nginx configuration syntax: words and quoted strings,
// ';'-terminated directives, '{…}' blocks and '#' comments.
func parseNginx(src string) ([]*directive, error) {
	var toks []string
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, string(c))
			i++
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated string at byte %d", i)
			}
			toks = append(toks, src[i+1:j])
			i = j + 1
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n;{}", rune(src[j])) {
				j++
			}
			toks = append(toks, src[i:j])
			i = j
		}
	}
	pos := 0
	var parse func(depth int) ([]*directive, error)
	parse = func(depth int) ([]*directive, error) {
		var out []*directive
		var cur []string
		for pos < len(toks) {
			t := toks[pos]
			pos++
			switch t {
			case ";":
				if len(cur) == 0 {
					return nil, fmt.Errorf("empty directive")
				}
				out = append(out, &directive{name: cur[0], args: cur[1:]})
				cur = nil
			case "{":
				if len(cur) == 0 {
					return nil, fmt.Errorf("block without a name")
				}
				d := &directive{name: cur[0], args: cur[1:]}
				cur = nil
				var err error
				if d.block, err = parse(depth + 1); err != nil {
					return nil, err
				}
				out = append(out, d)
			case "}":
				if depth == 0 || len(cur) != 0 {
					return nil, fmt.Errorf("unexpected '}'")
				}
				return out, nil
			default:
				cur = append(cur, t)
			}
		}
		if depth != 0 || len(cur) != 0 {
			return nil, fmt.Errorf("unexpected end of configuration")
		}
		return out, nil
	}
	return parse(0)
}

func find(ds []*directive, name string, args ...string) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name == name && (len(args) == 0 || slices.Equal(d.args[:min(len(args), len(d.args))], args)) {
			out = append(out, d)
		}
	}
	return out
}

func mustParseNginx(tb testing.TB, src string) (httpBlock []*directive) {
	tb.Helper()
	top, err := parseNginx(src)
	if err != nil {
		tb.Fatalf("nginx config: %v", err)
	}
	h := find(top, "http")
	if len(h) != 1 {
		tb.Fatalf("want one http block, got %d", len(h))
	}
	return h[0].block
}

func upstreamServers(tb testing.TB, src string) []string {
	tb.Helper()
	up := find(mustParseNginx(tb, src), "upstream", "hextrack")
	if len(up) != 1 {
		tb.Fatal("no upstream hextrack block")
	}
	var out []string
	for _, s := range find(up[0].block, "server") {
		out = append(out, s.args[0])
	}
	return out
}

// route picks the location nginx would use for path: the first matching
// regex location, else the longest matching prefix location (these configs
// use no ^~ or = locations).
func route(tb testing.TB, server []*directive, path string) *directive {
	tb.Helper()
	var prefix *directive
	for _, loc := range find(server, "location") {
		switch {
		case len(loc.args) == 2 && loc.args[0] == "~":
			if regexp.MustCompile(loc.args[1]).MatchString(path) {
				return loc
			}
		case len(loc.args) == 1 && strings.HasPrefix(path, loc.args[0]):
			if prefix == nil || len(loc.args[0]) > len(prefix.args[0]) {
				prefix = loc
			}
		}
	}
	if prefix == nil {
		tb.Fatalf("no location serves %s", path)
	}
	return prefix
}

func value(ds []*directive, name string) string {
	if f := find(ds, name); len(f) > 0 {
		return strings.Join(f[len(f)-1].args, " ")
	}
	return ""
}

func TestNginxConfEssentials(t *testing.T) {
	src := readNginxConf(t)
	for _, must := range []string{"proxy_buffering off", "proxy_set_header Upgrade $http_upgrade"} {
		if !strings.Contains(src, must) {
			t.Errorf("nginx.conf lacks %q", must)
		}
	}
	top, err := parseNginx(src)
	if err != nil {
		t.Fatal(err)
	}
	httpBlock := mustParseNginx(t, src)
	servers := find(httpBlock, "server")
	if len(servers) != 1 {
		t.Fatalf("want one server block, got %d", len(servers))
	}
	server := servers[0].block

	t.Run("worker limits", func(t *testing.T) {
		var conns, rlimit int
		fmt.Sscan(value(find(top, "events")[0].block, "worker_connections"), &conns)
		fmt.Sscan(value(top, "worker_rlimit_nofile"), &rlimit)
		if conns < 4096 || rlimit <= conns {
			t.Errorf("worker_connections %d, worker_rlimit_nofile %d: want ≥ 4096 and rlimit above it", conns, rlimit)
		}
	})
	t.Run("upgrade map", func(t *testing.T) {
		m := find(httpBlock, "map", "$http_upgrade", "$connection_upgrade")
		if len(m) != 1 {
			t.Fatal("no map $http_upgrade $connection_upgrade")
		}
		if value(m[0].block, "default") != "upgrade" {
			t.Error("map default is not upgrade")
		}
	})
	t.Run("upstream is not sticky and keeps connections", func(t *testing.T) {
		up := find(httpBlock, "upstream", "hextrack")[0].block
		for _, sticky := range []string{"ip_hash", "hash", "sticky"} {
			if len(find(up, sticky)) > 0 {
				t.Errorf("upstream uses %s", sticky)
			}
		}
		if len(find(up, "server")) < 2 {
			t.Error("fewer than two upstream servers")
		}
		if value(up, "keepalive") == "" {
			t.Error("no upstream keepalive")
		}
	})
	t.Run("headers for every location", func(t *testing.T) {
		want := map[string]string{
			"Upgrade":           "$http_upgrade",
			"Connection":        "$connection_upgrade",
			"Host":              "$host",
			"X-Forwarded-For":   "$proxy_add_x_forwarded_for",
			"X-Forwarded-Proto": "$scheme",
		}
		got := map[string]string{}
		for _, d := range find(server, "proxy_set_header") {
			got[d.args[0]] = d.args[1]
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("proxy_set_header %s = %q, want %q", k, got[k], v)
			}
		}
		if value(server, "proxy_http_version") != "1.1" {
			t.Error("proxy_http_version is not 1.1 (needed for keep-alive and Upgrade)")
		}
		for _, loc := range find(server, "location") {
			if len(find(loc.block, "proxy_set_header")) > 0 {
				t.Errorf("location %v sets proxy_set_header and so drops the server-level headers", loc.args)
			}
		}
	})
	for _, tc := range []struct {
		path      string
		streaming bool // SSE or WebSocket: long-lived
		sse       bool
	}{
		{"/v1/trips/t_123/events", true, true},
		{"/v1/ops/summary/stream", true, true},
		{"/v1/ops/drivers/stream", true, true},
		{"/v1/ops/stream", true, true},
		{"/v1/drivers/d_1/ws", true, false},
		{"/v1/drivers/d_1/commands", false, false},
		{"/v1/trips", false, false},
		{"/v1/trips/t_123/events/extra", false, false},
		{"/readyz", false, false},
	} {
		t.Run("route "+tc.path, func(t *testing.T) {
			loc := route(t, server, tc.path).block
			if value(loc, "proxy_pass") != "http://hextrack" {
				t.Errorf("proxy_pass %q", value(loc, "proxy_pass"))
			}
			long := value(loc, "proxy_read_timeout") == "1h"
			if long != tc.streaming {
				t.Errorf("proxy_read_timeout %q, streaming %v", value(loc, "proxy_read_timeout"), tc.streaming)
			}
			if tc.streaming && value(loc, "proxy_buffering") != "off" {
				t.Error("streaming location buffers")
			}
			if tc.sse && (value(loc, "proxy_cache") != "off" || value(loc, "gzip") != "off") {
				t.Error("SSE location must turn proxy_cache and gzip off")
			}
		})
	}
}

func TestNginxConfigRender(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     deploy.NginxConfig
		wantErr string
	}{
		{"local", deploy.Local("127.0.0.1:18080", "/tmp/x", "127.0.0.1:1", "127.0.0.1:2"), ""},
		{"compose", deploy.Compose(), ""},
		{"defaults", deploy.NginxConfig{Listen: "80", Upstreams: []string{"a:1"}}, ""},
		{"no listen", deploy.NginxConfig{Upstreams: []string{"a:1"}}, "listen"},
		{"no upstream", deploy.NginxConfig{Listen: "80"}, "upstream"},
		{"upstream without port", deploy.NginxConfig{Listen: "80", Upstreams: []string{"a"}}, "host:port"},
		{"directive injection", deploy.NginxConfig{Listen: "80", Upstreams: []string{"a:1; include /etc/passwd"}}, "not a valid"},
		{"rlimit below connections", deploy.NginxConfig{Listen: "80", Upstreams: []string{"a:1"}, WorkerConnections: 1000, RlimitNofile: 1000}, "must exceed"},
		{"negative", deploy.NginxConfig{Listen: "80", Upstreams: []string{"a:1"}, WorkerProcesses: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := tc.cfg.Render(&buf)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := upstreamServers(t, buf.String())
			if !slices.Equal(got, tc.cfg.Upstreams) {
				t.Errorf("upstream servers %v, want %v", got, tc.cfg.Upstreams)
			}
			if !strings.Contains(buf.String(), "listen "+tc.cfg.Listen+" ") {
				t.Errorf("listen %s not rendered", tc.cfg.Listen)
			}
			if tc.cfg.Dir != "" && !strings.Contains(buf.String(), "pid "+tc.cfg.Dir+"/nginx.pid;") {
				t.Error("Dir set but pid not under it")
			}
			if tc.cfg.Resolver == "" && strings.Contains(buf.String(), " resolve;") {
				t.Error("resolve without a resolver")
			}
		})
	}
}

// TestLocalFitsProcessLimit: Local must start under this machine kind's
// per-process open-file limit of 20,000.
func TestLocalFitsProcessLimit(t *testing.T) {
	c := deploy.Local("127.0.0.1:0", "/tmp", "127.0.0.1:1")
	if c.RlimitNofileValue() > 20000 {
		t.Errorf("worker_rlimit_nofile %d exceeds 20000", c.RlimitNofileValue())
	}
	if c.RlimitNofileValue() <= c.WorkerConnectionsValue() {
		t.Errorf("rlimit %d not above worker_connections %d", c.RlimitNofileValue(), c.WorkerConnectionsValue())
	}
}

// nginxBinary returns the nginx executable, or skips: nginx is installed by
// .ci/run for the fault suite and by `apt-get install nginx` locally.
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("nginx not installed (apt-get install nginx): syntax and proxy checks skipped")
	return ""
}

// TestNginxSyntax runs `nginx -t` on both renderings; the compose one gets
// loopback upstreams and no resolver (Docker DNS names and the resolve
// parameter need Docker and nginx ≥ 1.27.3).
func TestNginxSyntax(t *testing.T) {
	bin := nginxBinary(t)
	compose := deploy.Compose()
	compose.Resolver = ""
	compose.Upstreams = []string{"127.0.0.1:1", "127.0.0.1:2"}
	for name, cfg := range map[string]deploy.NginxConfig{
		"local":   deploy.Local(freeAddr(t), "", "127.0.0.1:1", "127.0.0.1:2"),
		"compose": compose,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg.Dir = dir
			conf := writeNginxConf(t, cfg)
			out, err := exec.Command(bin, "-t", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
			if err != nil {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
		})
	}
}

func writeNginxConf(t *testing.T, cfg deploy.NginxConfig) string {
	t.Helper()
	var buf bytes.Buffer
	if err := cfg.Render(&buf); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(cfg.Dir, "nginx.conf")
	if err := os.WriteFile(conf, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startNginx runs nginx in the foreground with cfg and stops it (SIGTERM to
// the master, which stops its workers) at cleanup.
func startNginx(t *testing.T, cfg deploy.NginxConfig) {
	t.Helper()
	bin := nginxBinary(t)
	conf := writeNginxConf(t, cfg)
	cmd := exec.Command(bin, "-p", cfg.Dir, "-c", conf, "-e", filepath.Join(cfg.Dir, "error.log"), "-g", "daemon off;")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // closed when nginx has exited; then waitErr is set
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Error("nginx did not stop on SIGTERM")
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(cfg.Dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", stderr.String(), b)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", cfg.Listen, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("nginx exited: %v", waitErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening on %s: %v", cfg.Listen, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeNode stands in for a hextrack node behind nginx.
func fakeNode(t *testing.T, name string, release <-chan struct{}) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"node":  name,
			"xff":   r.Header.Get("X-Forwarded-For"),
			"proto": r.Header.Get("X-Forwarded-Proto"),
			"rid":   r.Header.Get("X-Request-Id"),
			"conn":  r.Header.Get("Connection"),
		})
	})
	// Node "b" cannot reach Redis: its readiness and streams answer 503.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if name != "b" {
			io.WriteString(w, `{"status":"ready","node":"`+name+`"}`)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":"unavailable","message":"redis unreachable"}}`)
	})
	// An SSE stream that sends one event and then holds the response open
	// until the test has seen that event through nginx.
	mux.HandleFunc("GET /v1/trips/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprintf(w, "id: 1-0\nevent: trip.status\ndata: {\"node\":%q}\n\n", name)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	// A WebSocket-like upgrade: 101, then echo raw bytes.
	mux.HandleFunc("GET /v1/drivers/{id}/ws", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			http.Error(w, "upgrade headers missing: Upgrade="+r.Header.Get("Upgrade")+" Connection="+r.Header.Get("Connection"), http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		io.Copy(conn, rw)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestNginxProxiesHextrack puts real nginx, configured by deploy.Local, in
// front of two stand-in nodes and checks what hextrack depends on: SSE is
// delivered unbuffered, WebSocket upgrades pass, forwarding headers arrive,
// requests spread over both nodes, a dead node is skipped, a node's 503 is
// retried on the other node, and with no node left nginx answers in the
// API's shape.
func TestNginxProxiesHextrack(t *testing.T) {
	nginxBinary(t)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	a := fakeNode(t, "a", release)
	b := fakeNode(t, "b", release)
	dir := t.TempDir()
	cfg := deploy.Local(freeAddr(t), dir, a.Listener.Addr().String(), b.Listener.Addr().String())
	startNginx(t, cfg)
	base := "http://" + cfg.Listen
	client := &http.Client{Timeout: 5 * time.Second}

	t.Run("sse is not buffered", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/v1/trips/t_1/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		lines := make(chan string, 8)
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// The node holds the response open: the event must arrive anyway.
		timeout := time.After(3 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended before the event arrived")
				}
				if strings.HasPrefix(l, "data: ") {
					return
				}
			case <-timeout:
				t.Fatal("event not delivered while the response is open: nginx buffers SSE")
			}
		}
	})

	t.Run("websocket upgrade", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", cfg.Listen, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(conn, "GET /v1/drivers/d_1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		io.WriteString(conn, "ping-frame")
		buf := make([]byte, len("ping-frame"))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping-frame" {
			t.Fatalf("echo %q, %v", buf, err)
		}
	})

	echo := func(t *testing.T) map[string]string {
		t.Helper()
		resp, err := client.Get(base + "/echo")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var m map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("forwarding headers", func(t *testing.T) {
		m := echo(t)
		if m["xff"] != "127.0.0.1" || m["proto"] != "http" || m["rid"] == "" {
			t.Errorf("X-Forwarded-For %q, X-Forwarded-Proto %q, X-Request-Id %q", m["xff"], m["proto"], m["rid"])
		}
		if strings.EqualFold(m["conn"], "close") {
			t.Error("nginx sends Connection: close upstream: keep-alive is off")
		}
	})

	t.Run("no stickiness", func(t *testing.T) {
		seen := map[string]int{}
		for range 20 {
			seen[echo(t)["node"]]++
		}
		if seen["a"] == 0 || seen["b"] == 0 {
			t.Errorf("requests by node %v: both nodes should serve", seen)
		}
	})

	t.Run("node 503 goes to another node", func(t *testing.T) {
		// A node without Redis answers 503: nginx tries the next one, so
		// streams and reads land on a healthy node (the fault suite's node
		// cut off from Redis depends on it).
		for i := range 6 {
			resp, err := client.Get(base + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"node":"a"`) {
				t.Fatalf("request %d: status %d body %s: want the healthy node's 200", i, resp.StatusCode, body)
			}
		}
	})

	t.Run("dead node is skipped", func(t *testing.T) {
		once.Do(func() { close(release) })
		b.Close()
		for i := range 10 {
			if n := echo(t)["node"]; n != "a" {
				t.Fatalf("request %d served by %q", i, n)
			}
		}
	})

	t.Run("no node left", func(t *testing.T) {
		a.Close()
		resp, err := client.Get(base + "/echo")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if resp.StatusCode != http.StatusBadGateway || json.Unmarshal(body, &e) != nil || e.Error.Code != "unavailable" {
			t.Errorf("status %d body %s: want 502 with a JSON error", resp.StatusCode, body)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	})
}
