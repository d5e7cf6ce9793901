package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/apikeys"
	podapi "github.com/hextrack/hextrack/api/pod"
	"github.com/hextrack/hextrack/apikey"
	"github.com/hextrack/hextrack/dispatch/dispatchredis"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/ops/opsredis"
	"github.com/hextrack/hextrack/payment/paymentredis"
	"github.com/hextrack/hextrack/trip/tripredis"
	"github.com/hextrack/hextrack/web"

	"github.com/hextrack/hextrack/api/tokens"
)

// The callers of the authorization audit, in table column order.
var auditCallers = []string{"none", "owner", "other rider", "driver", "other driver",
	"viewer", "other viewer", "ops", "expired", "other secret", "alg none"}

// auditRow is one route of the audit: the request sent (placeholders
// {trip}, {ptrip}, {driver}, {share}, {pay} are the world's ids) and the
// status expected for each caller of auditCallers.
//
// Adding a route: add a row with its request and expected statuses. Run
// `AUDIT_PRINT=1 go test -run TestAuthorizationAudit -v ./api/` to see the
// statuses the server gives and paste the line after checking every cell.
// 401: no/bad token; 403: token of someone without a right to this trip
// or driver (ops may not act as a driver: accept/arrived/pickup/decline);
// 404: a route that does not exist in this mode; 409/400: the caller is
// allowed but the trip's state or the request refuses it (the trip is
// already accepted by driver; the acked command id 1-0 was never sent).
// The world's payment already exists, so POST .../payment replays it (200).
// There is no dispatcher in the audit: "only the offered driver accepts"
// is dispatch's trip hook, tested in dispatch/dispatchredis/dispatch_test.go.
type auditRow struct {
	route  string // "METHOD /pattern", as echo lists it
	path   string // concrete path, with placeholders
	body   string
	status [11]int
}

// auditAssets are built web files: without the web build (make web) their
// 200s are 404s.
var auditAssets = map[string]bool{"GET /config.json": true, "GET /favicon.svg": true}

// Columns: none, owner, other rider, driver, other driver, viewer, other viewer, ops, expired, other secret, alg none.
var auditTable = []auditRow{
	// Public: pages, health, metrics, spec, map. A bad token is refused everywhere.
	{"GET /", "/", "", [11]int{200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401}},
	{"GET /ops", "/ops", "", [11]int{200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401}},
	{"GET /driver", "/driver", "", [11]int{200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401}},
	{"GET /assets/*", "/assets/none.js", "", [11]int{404, 404, 404, 404, 404, 404, 404, 404, 401, 401, 401}},
	{"GET /config.json", "/config.json", "", [11]int{200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401}},
	{"GET /favicon.svg", "/favicon.svg", "", [11]int{200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401}},
	{"GET /healthz", "/healthz", "", [11]int{200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401}},
	{"GET /readyz", "/readyz", "", [11]int{200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401}},
	{"GET /metrics", "/metrics", "", [11]int{200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401}},
	{"GET /openapi.yaml", "/openapi.yaml", "", [11]int{200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401}},
	{"GET /v1/map/roads.geojson", "/v1/map/roads.geojson", "", [11]int{200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401}},
	// Dev tokens: not in production mode.
	{"POST /v1/dev/token", "/v1/dev/token", `{"role":"ops","sub":"x"}`, [11]int{404, 404, 404, 404, 404, 404, 404, 404, 401, 401, 401}},
	// Drivers ({driver} is the trip's assigned driver).
	{"GET /v1/drivers/nearby", "/v1/drivers/nearby?lat=52.52&lng=13.405", "", [11]int{401, 200, 200, 200, 200, 403, 403, 200, 401, 401, 401}},
	{"GET /v1/drivers/:id", "/v1/drivers/{driver}", "", [11]int{401, 403, 403, 200, 403, 403, 403, 200, 401, 401, 401}},
	{"POST /v1/drivers/:id/locations", "/v1/drivers/{driver}/locations", "{ping}", [11]int{401, 403, 403, 200, 403, 403, 403, 200, 401, 401, 401}},
	{"PUT /v1/drivers/:id/status", "/v1/drivers/{driver}/status", `{"status":"available"}`, [11]int{401, 403, 403, 409, 403, 403, 403, 409, 401, 401, 401}},
	{"GET /v1/drivers/:id/ws", "/v1/drivers/{driver}/ws", "", [11]int{401, 403, 403, 400, 403, 403, 403, 403, 401, 401, 401}},
	{"GET /v1/drivers/:id/commands", "/v1/drivers/{driver}/commands?wait=0", "", [11]int{401, 403, 403, 200, 403, 403, 403, 200, 401, 401, 401}},
	{"POST /v1/drivers/:id/commands/:cmd/ack", "/v1/drivers/{driver}/commands/1-0/ack", "", [11]int{401, 403, 403, 400, 403, 403, 403, 400, 401, 401, 401}},
	// Suspensions (api/suspensions): ops only; {driver} is on a trip, so
	// suspending it is a 409 and reinstating it changes nothing.
	{"POST /v1/drivers/:id/suspend", "/v1/drivers/{driver}/suspend", `{"reason":"audit"}`, [11]int{401, 403, 403, 403, 403, 403, 403, 409, 401, 401, 401}},
	{"POST /v1/drivers/:id/reinstate", "/v1/drivers/{driver}/reinstate", "", [11]int{401, 403, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"GET /v1/drivers/:id/suspensions", "/v1/drivers/{driver}/suspensions", "", [11]int{401, 403, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"GET /v1/ops/drivers/suspended", "/v1/ops/drivers/suspended", "", [11]int{401, 403, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	// Trips ({trip}: a ride of owner, assigned to driver, shared with viewer).
	{"POST /v1/trips", "/v1/trips", `{"kind":"ride","pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.5,"lng":13.38},"payment":"cash"}`, [11]int{401, 201, 201, 403, 403, 403, 403, 201, 401, 401, 401}},
	{"GET /v1/trips/:id", "/v1/trips/{trip}", "", [11]int{401, 200, 403, 200, 403, 200, 403, 200, 401, 401, 401}},
	{"GET /v1/trips/:id/events", "/v1/trips/{trip}/events?limit=1", "", [11]int{401, 200, 403, 200, 403, 200, 403, 200, 401, 401, 401}},
	{"GET /v1/trips/:id/path", "/v1/trips/{trip}/path", "", [11]int{401, 200, 403, 200, 403, 200, 403, 200, 401, 401, 401}},
	{"POST /v1/trips/:id/cancel", "/v1/trips/{trip}/cancel", "", [11]int{401, 200, 403, 200, 403, 403, 403, 200, 401, 401, 401}},
	{"POST /v1/trips/:id/dropoff", "/v1/trips/{trip}/dropoff", `{"lat":52.4,"lng":13.3}`, [11]int{401, 200, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"POST /v1/trips/:id/messages", "/v1/trips/{trip}/messages", `{"client_id":"c1","text":"hi"}`, [11]int{401, 201, 403, 201, 403, 403, 403, 201, 401, 401, 401}},
	{"POST /v1/trips/:id/stops", "/v1/trips/{trip}/stops", `{"kind":"drop","location":{"lat":52.49,"lng":13.37}}`, [11]int{401, 201, 403, 403, 403, 403, 403, 201, 401, 401, 401}},
	// (removing s2, the ride's only drop, is refused: 400 for those allowed)
	{"DELETE /v1/trips/:id/stops/:stop", "/v1/trips/{trip}/stops/s2", "", [11]int{401, 400, 403, 403, 403, 403, 403, 400, 401, 401, 401}},
	{"PUT /v1/trips/:id/stops/order", "/v1/trips/{trip}/stops/order", `{"order":["s1","s2"]}`, [11]int{401, 200, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"POST /v1/trips/:id/stops/:stop/complete", "/v1/trips/{trip}/stops/s1/complete", `{"lat":52.52,"lng":13.405}`, [11]int{401, 403, 403, 200, 403, 403, 403, 200, 401, 401, 401}},
	{"POST /v1/trips/:id/stops/:stop/fail", "/v1/trips/{trip}/stops/s1/fail", `{"reason":"closed"}`, [11]int{401, 403, 403, 200, 403, 403, 403, 200, 401, 401, 401}},
	{"POST /v1/trips/:id/stops/:stop/skip", "/v1/trips/{trip}/stops/s1/skip", "", [11]int{401, 200, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"POST /v1/trips/:id/share", "/v1/trips/{trip}/share", "", [11]int{401, 201, 403, 403, 403, 403, 403, 201, 401, 401, 401}},
	{"DELETE /v1/trips/:id/share/:share", "/v1/trips/{trip}/share/{share}", "", [11]int{401, 204, 403, 403, 403, 403, 403, 204, 401, 401, 401}},
	{"POST /v1/trips/:id/accept", "/v1/trips/{trip}/accept", "", [11]int{401, 403, 403, 409, 409, 403, 403, 403, 401, 401, 401}},
	{"POST /v1/trips/:id/decline", "/v1/trips/{trip}/decline", "", [11]int{401, 403, 403, 200, 403, 403, 403, 403, 401, 401, 401}},
	{"POST /v1/trips/:id/arrived", "/v1/trips/{trip}/arrived", "", [11]int{401, 403, 403, 200, 403, 403, 403, 403, 401, 401, 401}},
	{"POST /v1/trips/:id/pickup", "/v1/trips/{trip}/pickup", "", [11]int{401, 403, 403, 409, 403, 403, 403, 403, 401, 401, 401}},
	{"POST /v1/trips/:id/complete", "/v1/trips/{trip}/complete", "", [11]int{401, 403, 403, 409, 403, 403, 403, 409, 401, 401, 401}},
	{"POST /v1/trips/:id/reassign", "/v1/trips/{trip}/reassign", "", [11]int{401, 403, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	// History (api/history) without an archive: the role guard, then 503
	// (or 403 for a driver's history asked by someone else). Its matrix over
	// a real archive is api/history's TestAuthorizationMatrix.
	{"GET /v1/trips", "/v1/trips", "", [11]int{401, 503, 503, 503, 503, 403, 403, 503, 401, 401, 401}},
	{"GET /v1/trips/:id/receipt", "/v1/trips/{trip}/receipt", "", [11]int{401, 503, 503, 503, 503, 403, 403, 503, 401, 401, 401}},
	{"GET /v1/drivers/:id/trips", "/v1/drivers/{driver}/trips", "", [11]int{401, 403, 403, 503, 403, 403, 403, 503, 401, 401, 401}},
	{"GET /v1/drivers/:id/shifts", "/v1/drivers/{driver}/shifts", "", [11]int{401, 403, 403, 503, 403, 403, 403, 503, 401, 401, 401}},
	// Ops views and streams: ops only.
	{"GET /v1/ops/summary", "/v1/ops/summary", "", [11]int{401, 403, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"GET /v1/ops/summary/stream", "/v1/ops/summary/stream", "", [11]int{401, 403, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"GET /v1/ops/drivers/stream", "/v1/ops/drivers/stream?cells=871f1d48bffffff", "", [11]int{401, 403, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"GET /v1/ops/supply", "/v1/ops/supply?res=7", "", [11]int{401, 403, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"GET /v1/ops/trips", "/v1/ops/trips", "", [11]int{401, 403, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	// API keys ({key}: a key of the world): ops only.
	{"POST /v1/apikeys", "/v1/apikeys", `{"name":"svc","scopes":["trips:read"]}`, [11]int{401, 403, 403, 403, 403, 403, 403, 201, 401, 401, 401}},
	{"GET /v1/apikeys", "/v1/apikeys", "", [11]int{401, 403, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"DELETE /v1/apikeys/:id", "/v1/apikeys/{key}", "", [11]int{401, 403, 403, 403, 403, 403, 403, 204, 401, 401, 401}},
	// Webhook endpoints, without an archive: ops past the guard, 503.
	{"POST /v1/webhooks/endpoints", "/v1/webhooks/endpoints", `{"url":"https://hooks.example/in"}`, [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"GET /v1/webhooks/endpoints", "/v1/webhooks/endpoints", "", [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"GET /v1/webhooks/endpoints/:id", "/v1/webhooks/endpoints/we_x", "", [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"PATCH /v1/webhooks/endpoints/:id", "/v1/webhooks/endpoints/we_x", `{"enabled":false}`, [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"DELETE /v1/webhooks/endpoints/:id", "/v1/webhooks/endpoints/we_x", "", [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"GET /v1/webhooks/endpoints/:id/deliveries", "/v1/webhooks/endpoints/we_x/deliveries", "", [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"POST /v1/webhooks/endpoints/:id/replay", "/v1/webhooks/endpoints/we_x/replay", `{"from_event":"1-0"}`, [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	// Proof of delivery (api/pod): uploads by the trip's driver only (the
	// audit's JSON body is then refused: not multipart); reads by its
	// rider, driver and ops, never a share-link viewer (no proof yet: the
	// file is 404, the list 200).
	{"POST /v1/trips/:id/stops/:stop_id/proof/:kind", "/v1/trips/{trip}/stops/dropoff/proof/photo", `{}`, [11]int{401, 403, 403, 400, 403, 403, 403, 403, 401, 401, 401}},
	{"GET /v1/trips/:id/stops/:stop_id/proof", "/v1/trips/{trip}/stops/dropoff/proof", "", [11]int{401, 200, 403, 200, 403, 403, 403, 200, 401, 401, 401}},
	{"GET /v1/trips/:id/stops/:stop_id/proof/:kind", "/v1/trips/{trip}/stops/dropoff/proof/photo", "", [11]int{401, 404, 403, 404, 403, 403, 403, 404, 401, 401, 401}},
	// Zones (api/zones, ops only; no store in this world: 503 for ops).
	{"POST /v1/zones", "/v1/zones", `{"name":"q","kind":"queue","geometry":{"type":"Polygon","coordinates":[[[13.40,52.50],[13.41,52.50],[13.41,52.51],[13.40,52.50]]]}}`, [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"GET /v1/zones", "/v1/zones", "", [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"GET /v1/zones/:id", "/v1/zones/z_0000000000000001", "", [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"PATCH /v1/zones/:id", "/v1/zones/z_0000000000000001", `{"name":"r"}`, [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"DELETE /v1/zones/:id", "/v1/zones/z_0000000000000001", "", [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"GET /v1/zones/:id/drivers", "/v1/zones/z_0000000000000001/drivers", "", [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	{"GET /v1/zones/:id/events", "/v1/zones/z_0000000000000001/events", "", [11]int{401, 403, 403, 403, 403, 403, 403, 503, 401, 401, 401}},
	// Payments ({ptrip}: owner's delivery awaiting payment; {pay}: its payment).
	{"POST /v1/trips/:id/payment", "/v1/trips/{ptrip}/payment", `{"return_path":"/"}`, [11]int{401, 200, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	{"GET /v1/payments/:id", "/v1/payments/{pay}", "", [11]int{401, 200, 403, 403, 403, 403, 403, 200, 401, 401, 401}},
	// The webhook is authenticated by its HMAC signature, not a token.
	{"POST /v1/webhooks/payments", "/v1/webhooks/payments", `{"id":"evt_1","type":"payment.succeeded","data":{}}`, [11]int{401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401}},
}

// auditWorld is one set of fixtures: a trip of owner assigned to driver
// and shared with viewer, another rider's trip shared with other viewer,
// and a delivery of owner awaiting payment.
type auditWorld struct {
	ids  map[string]string
	toks map[string]string
}

type auditEnv struct {
	ts   *httptest.Server
	srv  *api.Server
	keys *apikey.Service // API keys in a SQLite archive of the env's own
	n    atomic.Int64
}

func newAuditEnv(t *testing.T) *auditEnv { return newAuditEnvDrivers(t, driver.Config{}) }

// newAuditEnvDrivers is newAuditEnv with the driver service's config
// (the prefix is set here).
func newAuditEnvDrivers(t *testing.T, dc driver.Config) *auditEnv {
	t.Helper()
	rdb, prefix := redistest.MustOpen(t)
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	dc.Prefix = prefix
	drivers := driverredis.NewService(rdb, idx, dc)
	b := feedredis.New(rdb, feedredis.Config{MaxAge: 10 * time.Minute, Prefix: prefix})
	trips := tripredis.NewService(rdb, b, drivers, tripredis.Config{Prefix: prefix})
	drivers.Listen(trips.Tracker())
	pcfg := paymentredis.Config{GatewayURL: "http://gw.test", Secrets: [][]byte{[]byte("whsec_audit_0123456789abcdef")}, Prefix: prefix}
	pays, hooks := paymentredis.New(rdb, b, trips, pcfg), paymentredis.NewWebhooks(rdb, b, trips, pcfg)
	cmds := dispatchredis.NewCommands(rdb, b, prefix)
	ks := mustKeyStore(t)
	verifier := apikey.NewVerifier(ks, apikey.VerifierConfig{})
	keys := apikey.NewService(ks, verifier)
	// Production posture (no dev tokens); request limits are tested in
	// security_test.go and would only slow the audit's ~400 requests.
	srv := api.New(api.Config{JWTSecret: []byte(secret), Limits: unlimited},
		depsWith(newDeps(rdb, prefix, drivers, trips, b), func(d *api.Deps) {
			d.Payments, d.Webhooks = pays, hooks
			d.Commands, d.CommandPolls, d.Sessions = commandStreams{cmds}, cmds, cmds
			d.Ops = opsredis.New(rdb, trips.Store(), opsredis.Config{Prefix: prefix, Stale: idx.Stale()})
			d.Keys = verifier
			for i, r := range d.Routes { // newDeps' key routes have no store: give them one
				if _, ok := r.(*apikeys.Routes); ok {
					d.Routes[i] = apikeys.New(keys, slog.New(slog.DiscardHandler))
				}
				if _, ok := r.(*podapi.Routes); ok { // and proofs a directory
					d.Routes[i] = mustProofRoutes(t, rdb, prefix, b, trips.Store())
				}
			}
		}))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.StartDrain()
		ts.CloseClientConnections()
		ts.Close()
		_ = b.Close()
	})
	return &auditEnv{ts: ts, srv: srv, keys: keys}
}

func (e *auditEnv) mint(t *testing.T, role, sub, tr, jti string) string {
	t.Helper()
	tok, err := e.srv.Auth().Mint(tokens.Request{Role: role, Sub: sub, Trip: tr, ID: jti, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// world creates fresh fixtures through the API.
func (e *auditEnv) world(t *testing.T) auditWorld {
	t.Helper()
	n := e.n.Add(1)
	w := auditWorld{ids: map[string]string{}, toks: map[string]string{}}
	own, oth := fmt.Sprintf("r_own%d", n), fmt.Sprintf("r_oth%d", n)
	drv, odrv := fmt.Sprintf("d_asg%d", n), fmt.Sprintf("d_oth%d", n)
	w.toks["owner"] = e.mint(t, tokens.RoleRider, own, "", "")
	w.toks["other rider"] = e.mint(t, tokens.RoleRider, oth, "", "")
	w.toks["driver"] = e.mint(t, tokens.RoleDriver, drv, "", "")
	w.toks["other driver"] = e.mint(t, tokens.RoleDriver, odrv, "", "")
	w.toks["ops"] = e.mint(t, tokens.RoleOps, "ops1", "", "")
	must := func(method, path, tok, body string, want int) string {
		t.Helper()
		r := call(t, method, e.ts.URL+path, tok, body)
		if r.status != want {
			t.Fatalf("fixture %s %s: %d %s", method, path, r.status, r.body)
		}
		return r.body
	}
	id := func(body, field string) string {
		var m map[string]any
		_ = json.Unmarshal([]byte(body), &m)
		if tr, ok := m["trip"].(map[string]any); ok && field == "trip" {
			return tr["id"].(string)
		}
		s, _ := m[field].(string)
		return s
	}
	ride := `{"kind":"ride","pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.5,"lng":13.38},"payment":"cash"}`
	w.ids["trip"] = id(must("POST", "/v1/trips", w.toks["owner"], ride, 201), "trip")
	t2 := id(must("POST", "/v1/trips", w.toks["other rider"], ride, 201), "trip")
	for _, d := range []string{drv, odrv} {
		must("POST", "/v1/drivers/"+d+"/locations", w.toks[map[bool]string{true: "driver", false: "other driver"}[d == drv]],
			pingBody(52.521, 13.405, time.Now(), 1), 200)
	}
	must("POST", "/v1/trips/"+w.ids["trip"]+"/accept", w.toks["driver"], "", 200)
	w.ids["driver"] = drv
	sh := must("POST", "/v1/trips/"+w.ids["trip"]+"/share", w.toks["owner"], "", 201)
	w.ids["share"] = id(sh, "id")
	w.toks["viewer"] = id(sh, "token")
	w.toks["other viewer"] = id(must("POST", "/v1/trips/"+t2+"/share", w.toks["other rider"], "", 201), "token")
	w.ids["ptrip"] = id(must("POST", "/v1/trips", w.toks["owner"], `{"kind":"delivery","payment":"online","pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.5,"lng":13.38}}`, 201), "trip")
	k, err := e.keys.Create(context.Background(), apikey.CreateRequest{Name: "audit", Scopes: []string{tokens.ScopeTripsRead}})
	if err != nil {
		t.Fatal(err)
	}
	w.ids["key"] = k.Key.ID
	w.ids["pay"] = id(must("POST", "/v1/trips/"+w.ids["ptrip"]+"/payment", w.toks["owner"], `{"return_path":"/"}`, 201), "id")
	// Forged and stale tokens of the owner.
	owner := tokens.Claims{Role: tokens.RoleRider, RegisteredClaims: jwt.RegisteredClaims{Subject: own, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
	expired := owner
	expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	w.toks["expired"] = sign(t, jwt.SigningMethodHS256, []byte(secret), expired)
	w.toks["other secret"] = sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef0123"), owner)
	w.toks["alg none"] = sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, owner)
	return w
}

// auditCall returns the status of one request without reading the body
// (streams answer 200 and keep going; closing ends them).
func auditCall(t *testing.T, method, url, tok, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (w auditWorld) expand(s string) string {
	for k, v := range w.ids {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return s
}

// TestAuthorizationAudit calls every registered route as every caller and
// compares the status with auditTable. A route without a row fails.
// State-changing routes get a fresh world per call.
func TestAuthorizationAudit(t *testing.T) {
	e := newAuditEnv(t)
	rows := map[string]auditRow{}
	for _, r := range auditTable {
		rows[r.route] = r
	}
	var routes []string
	for _, r := range e.srv.Echo().Routes() {
		if r.Method == echo.RouteNotFound { // a group's 404 catch-all, not a route
			continue
		}
		routes = append(routes, r.Method+" "+r.Path)
	}
	sort.Strings(routes)
	shared := e.world(t)
	got := map[string][11]int{}
	for _, route := range routes {
		row, ok := rows[route]
		if !ok {
			t.Errorf("route %s has no row in auditTable: add one (see auditRow)", route)
			continue
		}
		method := strings.Fields(route)[0]
		var st [11]int
		for i, caller := range auditCallers {
			w := shared
			if method != "GET" {
				w = e.world(t)
			}
			body := row.body
			if body == "{ping}" {
				body = pingBody(52.5211, 13.405, time.Now(), 2)
			}
			st[i] = auditCall(t, method, e.ts.URL+w.expand(row.path), w.toks[caller], body)
		}
		got[route] = st
		if auditAssets[route] && !web.Built(web.Files()) {
			for i, v := range row.status {
				if v == 200 {
					row.status[i] = 404
				}
			}
		}
		if st != row.status {
			for i := range st {
				if st[i] != row.status[i] {
					t.Errorf("%s as %s: %d, want %d", route, auditCallers[i], st[i], row.status[i])
				}
			}
		}
	}
	for _, r := range auditTable {
		if _, ok := got[r.route]; !ok && !strings.Contains(strings.Join(routes, "\n"), r.route) {
			t.Errorf("auditTable row %s names no registered route", r.route)
		}
	}
	t.Log("\n" + auditMarkdown(routes, got))
	if os.Getenv("AUDIT_PRINT") != "" {
		for _, r := range routes {
			if st, ok := got[r]; ok {
				fmt.Printf("%q: %#v\n", r, st)
			}
		}
	}
}

// auditMarkdown renders the observed table for notes.
func auditMarkdown(routes []string, got map[string][11]int) string {
	var b strings.Builder
	b.WriteString("| route | " + strings.Join(auditCallers, " | ") + " |\n|---|")
	b.WriteString(strings.Repeat("---|", len(auditCallers)) + "\n")
	for _, r := range routes {
		st, ok := got[r]
		if !ok {
			continue
		}
		b.WriteString("| `" + r + "` |")
		for _, s := range st {
			fmt.Fprintf(&b, " %d |", s)
		}
		b.WriteString("\n")
	}
	return b.String()
}
