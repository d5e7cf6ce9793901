package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/geo"
)

// servers are the processes a scenario measures and how to reach them:
// the bench's own redis-server (and a client of it), a fresh hextrack per
// scenario, the reference server, and the tokens hextrack accepts (minted
// with the secret it is started with).
type servers struct {
	cfg    config
	self   string // this binary: the reference server and the load generators
	secret string
	auth   *api.Auth
	redis  *proc
	rdb    *redis.Client
	srv    *proc // the running hextrack, nil between scenarios
}

func newServers(c config, self, secret string) *servers {
	return &servers{cfg: c, self: self, secret: secret, auth: api.NewAuth([]byte(secret))}
}

func (s *servers) startRedis(ctx context.Context) error {
	addr := fmt.Sprintf("127.0.0.1:%d", s.cfg.redisPort)
	if portTaken(addr) {
		return fmt.Errorf("port %d is taken: the bench starts its own redis-server there (pick another with -redis-port, or 0 for a free one)", s.cfg.redisPort)
	}
	p, err := startProc("redis", filepath.Join(s.cfg.dir, "redis.log"), nil, "redis-server",
		"--port", fmt.Sprint(s.cfg.redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--maxclients", "10000", "--protected-mode", "no")
	if err != nil {
		return err
	}
	s.redis = p
	if err := waitPort(ctx, p, addr, 10*time.Second); err != nil {
		return err
	}
	s.rdb = redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	return nil
}

// baseEnv configures the server for load: limits off or high (the
// security defaults would throttle a benchmark's single-IP load), the
// bench's own secret, pprof on a side port (build tag pprof).
func (s *servers) baseEnv() []string {
	return []string{
		fmt.Sprintf("HEXTRACK_ADDR=127.0.0.1:%d", s.cfg.port),
		fmt.Sprintf("HEXTRACK_REDIS_URL=redis://127.0.0.1:%d/0", s.cfg.redisPort),
		"HEXTRACK_DEV=1", "HEXTRACK_JWT_SECRET=" + s.secret, "HEXTRACK_KEY_PREFIX=" + prefix,
		"HEXTRACK_LOG_LEVEL=warn", fmt.Sprintf("HEXTRACK_PPROF_ADDR=127.0.0.1:%d", s.cfg.pprofPort),
		"HEXTRACK_PING_RATE=-1", "HEXTRACK_ACTION_RATE=-1", "HEXTRACK_IP_ACTION_RATE=-1",
		"HEXTRACK_IP_STREAM_RATE=-1", "HEXTRACK_STREAM_RATE=-1", "HEXTRACK_MAX_STREAMS=19700",
		// The server's archive with the bench's logs, not in the user's data dir.
		"HEXTRACK_DATA_DIR=" + filepath.Join(s.cfg.dir, "data"),
	}
}

// startServer flushes the bench Redis and starts a fresh hextrack.
func (s *servers) startServer(ctx context.Context, name string, extra ...string) error {
	s.stopServer()
	if err := s.rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	if portTaken(s.addr()) {
		return fmt.Errorf("hextrack's port %d is taken (pick another with -port, or 0 for a free one)", s.cfg.port)
	}
	env := append(s.baseEnv(), extra...)
	p, err := startProc("hextrack", filepath.Join(s.cfg.dir, "hextrack-"+name+".log"), env, s.cfg.server)
	if err != nil {
		return err
	}
	s.srv = p
	if err := waitHTTP(ctx, p, s.base()+"/readyz", 60*time.Second); err != nil {
		return fmt.Errorf("hextrack: %w (see %s)", err, p.log.Name())
	}
	return nil
}

func (s *servers) stopServer() {
	if s.srv != nil {
		s.srv.stop(15 * time.Second)
		s.srv = nil
	}
}

func (s *servers) stopAll() {
	s.stopServer()
	if s.rdb != nil {
		s.rdb.Close()
	}
	if s.redis != nil {
		s.redis.stop(5 * time.Second)
	}
}

func (s *servers) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.cfg.port) }
func (s *servers) base() string { return "http://" + s.addr() }

// pprofURL is the server's pprof side listener.
func (s *servers) pprofURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", s.cfg.pprofPort)
}

func (s *servers) token(role, sub string) string {
	t, err := s.auth.Mint(api.TokenRequest{Role: role, Sub: sub, TTL: 6 * time.Hour})
	if err != nil {
		panic(err)
	}
	return t
}

// startRef starts the reference server as a child process on a free
// port and returns its address.
func (s *servers) startRef(ctx context.Context) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := startProc("ref", filepath.Join(s.cfg.dir, "ref.log"), nil, s.self, "ref", "-addr", addr)
	if err != nil {
		return nil, "", err
	}
	if err := waitPort(ctx, p, addr, 10*time.Second); err != nil {
		p.stop(time.Second)
		return nil, "", err
	}
	return p, addr, nil
}

// createTrip creates a trip as the rider of token.
func (s *servers) createTrip(ctx context.Context, token, key, kind, payment string, pickup, dropoff geo.Point) (snapshot, error) {
	var snap snapshot
	body := map[string]any{"kind": kind, "payment": payment,
		"pickup":  place{Lat: pickup.Lat, Lng: pickup.Lng, Address: "bench pickup"},
		"dropoff": place{Lat: dropoff.Lat, Lng: dropoff.Lng, Address: "bench dropoff"}}
	_, _, err := call(ctx, http.MethodPost, s.base()+"/v1/trips", token, body, &snap, "Idempotency-Key", key)
	return snap, err
}

// feedCatchups reads the server's hextrack_feed_catchups_total by trigger
// (position_check, broken_chain, resubscribe): how often subscribers were
// sent back to the stream, and why. nil when /metrics can't be read.
func (s *servers) feedCatchups(ctx context.Context) map[string]float64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token("ops", "bench"))
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
