package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
)

// logBuffer is a Main's log, read by the test while the server writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// keyReply is a reply of the API: status, body, and its error code.
type keyReply struct {
	status int
	body   string
	code   string // error.code, if any
}

func call(t *testing.T, m *Main, method, path, tok string, body any) keyReply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, "http://"+m.Addr()+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return keyReply{status: resp.StatusCode, body: string(b), code: e.Error.Code}
}

// expect checks a reply's status and error code (and, if given, a part of
// its message).
func (r keyReply) expect(t *testing.T, what string, status int, code, msg string) {
	t.Helper()
	if r.status != status || r.code != code || !strings.Contains(r.body, msg) {
		t.Fatalf("%s: %d %s, want %d %q containing %q", what, r.status, r.body, status, code, msg)
	}
}

// apikeyCLI runs `hextrack apikey args…` against archive flags.
func apikeyCLI(t *testing.T, archiveArgs []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	full := append([]string{"apikey", args[0]}, archiveArgs...)
	full = append(full, args[1:]...)
	err = run(context.Background(), full, &o, &e)
	return o.String(), e.String(), err
}

// TestAPIKeys: keys made by the CLI and the REST routes authenticate
// backend services by their scopes, show their last use, and stop
// working when revoked (at once on this node; from the CLI, within the
// verifier's 5 s cache) or expired; malformed, unknown and URL-borne keys
// are 401s saying why; a key without the scope is a 403. No secret ever
// reaches a list or the log. On SQLite and PostgreSQL.
func TestAPIKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T) (Config, []string)
	}{
		{"sqlite", func(t *testing.T) (Config, []string) {
			d := filepath.Join(t.TempDir(), "state")
			return Config{DataDir: d}, []string{"--data-dir", d}
		}},
		{"postgres", func(t *testing.T) (Config, []string) {
			u := testPostgres(t)
			return Config{DatabaseURL: u}, []string{"--database-url", u}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, archiveArgs := tc.cfg(t)
			cfg.Addr, cfg.Dev, cfg.LogLevel = "127.0.0.1:0", true, "debug"
			logs := &logBuffer{}
			m := NewMain(cfg, logs)
			if err := m.Run(context.Background()); err != nil {
				_ = m.Close()
				t.Fatalf("main: %v", err)
			}
			t.Cleanup(func() { _ = m.Close() })
			testAPIKeys(t, m, archiveArgs, logs)
		})
	}
}

func testAPIKeys(t *testing.T, m *Main, archiveArgs []string, logs *logBuffer) {
	ctx := context.Background()
	anon := client.New("http://"+m.Addr(), "", nil)
	opsTok, err := anon.DevToken(ctx, "ops", "ops1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	riderTok, _ := anon.DevToken(ctx, "rider", "r_keys", time.Hour)
	snap, err := anon.WithToken(riderTok).CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.1530, Lng: -8.6109}}, "")
	if err != nil {
		t.Fatal(err)
	}
	tripID := snap.Trip.ID

	// A trips:read key from the CLI: its token alone on stdout.
	out, errOut, err := apikeyCLI(t, archiveArgs, "create", "--name", "billing", "--scopes", "trips:read,webhooks:manage", "--expires", "90d")
	if err != nil {
		t.Fatalf("apikey create: %v\n%s", err, errOut)
	}
	readKey := strings.TrimSpace(out)
	if !strings.HasPrefix(readKey, "hx_") || strings.Count(readKey, "_") != 2 || !strings.Contains(errOut, "shown only this once") {
		t.Fatalf("apikey create printed %q / %q", out, errOut)
	}
	readID := strings.Split(readKey, "_")[1]
	if _, _, err := apikeyCLI(t, archiveArgs, "create", "--name", "x", "--scopes", "trips:write"); err == nil || !strings.Contains(err.Error(), "unknown scope") {
		t.Fatalf("apikey create with an unknown scope = %v", err)
	}

	// It reads trips and history, as ops would; nothing else.
	for _, p := range []string{"/v1/trips/" + tripID, "/v1/trips/" + tripID + "/path", "/v1/trips/" + tripID + "/events?after=0-0&timeout=0",
		"/v1/trips", "/v1/drivers/d_any/trips", "/v1/drivers/d_any/shifts"} {
		if r := call(t, m, "GET", p, readKey, nil); r.status != http.StatusOK {
			t.Fatalf("GET %s with a trips:read key: %d %s", p, r.status, r.body)
		}
	}
	call(t, m, "GET", "/v1/ops/summary", readKey, nil).expect(t, "ops route with a trips:read key", 403, "forbidden", "needs the ops scope")
	call(t, m, "GET", "/v1/apikeys", readKey, nil).expect(t, "key list with a trips:read key", 403, "forbidden", "ops")
	call(t, m, "POST", "/v1/trips/"+tripID+"/cancel", readKey, map[string]any{}).expect(t, "cancel with a key", 403, "forbidden", "service")
	call(t, m, "GET", "/v1/trips/"+tripID+"?access_token="+readKey, "", nil).expect(t, "key in the URL", 401, "unauthorized", "never in the URL")

	// An ops key from REST: shown once, reads the ops views and the keys.
	call(t, m, "POST", "/v1/apikeys", opsTok, map[string]any{"name": "x", "scopes": []string{"trips:read", "admin"}}).
		expect(t, "REST create with an unknown scope", 400, "invalid_scope", "admin")
	call(t, m, "POST", "/v1/apikeys", opsTok, map[string]any{"name": "x", "scopes": []string{"ops"}, "expires_in": "soon"}).
		expect(t, "REST create with a bad expiry", 400, "invalid_argument", "expiry")
	call(t, m, "POST", "/v1/apikeys", opsTok, map[string]any{"nam": "x", "scopes": []string{"ops"}}).
		expect(t, "REST create with an unknown field", 400, "invalid_argument", "body must be")
	call(t, m, "POST", "/v1/apikeys", riderTok, map[string]any{"name": "x", "scopes": []string{"ops"}}).
		expect(t, "REST create by a rider", 403, "forbidden", "")
	r := call(t, m, "POST", "/v1/apikeys", opsTok, map[string]any{"name": "ops-bot", "scopes": []string{"ops"}})
	var created struct {
		Key   struct{ ID string }
		Token string
	}
	if r.status != http.StatusCreated || json.Unmarshal([]byte(r.body), &created) != nil || !strings.HasPrefix(created.Token, "hx_"+created.Key.ID+"_") {
		t.Fatalf("REST create: %d %s", r.status, r.body)
	}
	opsKey := created.Token
	if r := call(t, m, "GET", "/v1/ops/summary", opsKey, nil); r.status != http.StatusOK {
		t.Fatalf("ops route with an ops key: %d %s", r.status, r.body)
	}

	// The list shows last use (the CLI's key was used above), never a secret.
	list := call(t, m, "GET", "/v1/apikeys", opsKey, nil)
	var keys struct {
		Keys []struct {
			ID, Name, Status string
			Scopes           []string
			LastUsedAt       *time.Time `json:"last_used_at"`
			ExpiresAt        *time.Time `json:"expires_at"`
		}
	}
	if list.status != http.StatusOK || json.Unmarshal([]byte(list.body), &keys) != nil || len(keys.Keys) != 2 {
		t.Fatalf("GET /v1/apikeys: %d %s", list.status, list.body)
	}
	billing := keys.Keys[1]
	if billing.ID != readID || billing.Status != "active" || billing.LastUsedAt == nil || time.Since(*billing.LastUsedAt) > time.Minute ||
		billing.ExpiresAt == nil || time.Until(*billing.ExpiresAt) < 89*24*time.Hour {
		t.Fatalf("the CLI's key in the list: %+v", billing)
	}
	cliList, _, err := apikeyCLI(t, archiveArgs, "list")
	if err != nil || !strings.Contains(cliList, readID) || !strings.Contains(cliList, "billing") || strings.Count(cliList, "\n") != 3 {
		t.Fatalf("apikey list = %q, %v", cliList, err)
	}

	// Malformed and unknown keys.
	call(t, m, "GET", "/v1/trips", "hx_notakey", nil).expect(t, "malformed key", 401, "unauthorized", "malformed")
	unknown := "hx_" + strings.Repeat("a", 13) + "_" + strings.Repeat("b", 52)
	call(t, m, "GET", "/v1/trips", unknown, nil).expect(t, "unknown key", 401, "unauthorized", "unknown API key")
	call(t, m, "GET", "/v1/trips", readKey[:len(readKey)-4]+"aaaa", nil).expect(t, "wrong secret", 401, "unauthorized", "unknown API key")

	// Expired.
	r = call(t, m, "POST", "/v1/apikeys", opsKey, map[string]any{"name": "brief", "scopes": []string{"trips:read"}, "expires_in": "1s"})
	var brief struct{ Token string }
	if r.status != http.StatusCreated || json.Unmarshal([]byte(r.body), &brief) != nil {
		t.Fatalf("create a 1 s key: %d %s", r.status, r.body)
	}
	time.Sleep(1100 * time.Millisecond)
	call(t, m, "GET", "/v1/trips", brief.Token, nil).expect(t, "expired key", 401, "unauthorized", "expired")

	// Revoked through REST: refused at once; again: 204; unknown: 404.
	call(t, m, "DELETE", "/v1/apikeys/"+created.Key.ID, opsTok, nil).expect(t, "revoke", 204, "", "")
	call(t, m, "GET", "/v1/ops/summary", opsKey, nil).expect(t, "revoked key", 401, "unauthorized", "revoked")
	call(t, m, "DELETE", "/v1/apikeys/"+created.Key.ID, opsTok, nil).expect(t, "revoke again", 204, "", "")
	call(t, m, "DELETE", "/v1/apikeys/nokey", opsTok, nil).expect(t, "revoke unknown", 404, "not_found", "nokey")

	// Revoked through the CLI (another process): refused within the cache TTL.
	if out, _, err := apikeyCLI(t, archiveArgs, "revoke", readID); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("apikey revoke = %q, %v", out, err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for {
		r := call(t, m, "GET", "/v1/trips", readKey, nil)
		if r.status == http.StatusUnauthorized {
			r.expect(t, "key revoked by the CLI", 401, "unauthorized", "revoked")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a key revoked by the CLI still works after 8 s: %d %s", r.status, r.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cliList, _, _ = apikeyCLI(t, archiveArgs, "list", "--json")

	// No secret (nor its hash) in any list or log line.
	for _, tok := range []string{readKey, opsKey, brief.Token} {
		secret := tok[strings.LastIndex(tok, "_")+1:]
		h := sha256.Sum256([]byte(secret))
		for what, text := range map[string]string{"REST list": list.body, "CLI list": cliList, "log": logs.String()} {
			if strings.Contains(text, secret) || strings.Contains(text, hex.EncodeToString(h[:])) {
				t.Errorf("a key's secret or hash is in the %s", what)
			}
		}
	}
	if !strings.Contains(logs.String(), "api key created") {
		t.Error("creating a key through REST logged nothing")
	}
}

// TestAPIKeyCLIRefuses: hextrack apikey without a subcommand, with an
// unknown one, or with bad arguments fails saying what it wants, and
// changes nothing.
func TestAPIKeyCLIRefuses(t *testing.T) {
	dir := []string{"--data-dir", filepath.Join(t.TempDir(), "state")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apikey"}, "want create, list or revoke"},
		{[]string{"apikey", "rotate"}, "unknown subcommand"},
		{[]string{"apikey", "revoke"}, "want one key id"},
		{[]string{"apikey", "revoke", "nokey"}, "no such API key"},
		{[]string{"apikey", "create", "--scopes", "ops"}, "name must be"},
		{[]string{"apikey", "create", "--name", "x"}, "at least one scope"},
		{[]string{"apikey", "create", "--name", "x", "--scopes", "ops", "--expires", "forever"}, "expiry"},
		{[]string{"apikey", "list", "extra"}, "unexpected arguments"},
	} {
		args := append(append(tc.args[:min(2, len(tc.args)):min(2, len(tc.args))], dir...), tc.args[min(2, len(tc.args)):]...)
		var o, e bytes.Buffer
		err := run(context.Background(), args, &o, &e)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("hextrack %s = %v, want an error saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	out, _, err := apikeyCLI(t, dir, "list")
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("apikey list after refused commands = %q, %v; want the header only", out, err)
	}
}
