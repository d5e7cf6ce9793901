package api_test

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/apikey"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/web"
)

// mustKeyStore is a SQLite archive of the test's own for API keys.
func mustKeyStore(tb testing.TB) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.Open(context.Background(), filepath.Join(tb.TempDir(), "archive.db"))
	if err != nil {
		tb.Fatalf("sqlstore.Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// The API-key callers of TestAPIKeyAudit, in column order.
var keyCallers = []string{"key trips:read", "key webhooks:manage", "key ops", "key revoked", "key malformed"}

// keyAudit are the routes an API key may reach, with the status each key
// gets (columns as keyCallers). Every other route: a public one (its
// auditTable "none" status is not 401) answers a key as it answers no
// token; the others refuse a valid key with 403. A revoked or malformed
// key is a 401 everywhere. A route that starts accepting keys (e.g. with
// caller.GuardScope) needs a row here.
var keyAudit = map[string][5]int{
	"GET /v1/trips/:id":        {200, 403, 200, 401, 401},
	"GET /v1/trips/:id/events": {200, 403, 200, 401, 401},
	"GET /v1/trips/:id/path":   {200, 403, 200, 401, 401},
	// Proofs of delivery: read as ops with trips:read (no proof yet: 404).
	"GET /v1/trips/:id/stops/:stop_id/proof":       {200, 403, 200, 401, 401},
	"GET /v1/trips/:id/stops/:stop_id/proof/:kind": {404, 403, 404, 401, 401},
	// History without an archive: past the guard, 503.
	"GET /v1/trips":               {503, 403, 503, 401, 401},
	"GET /v1/trips/:id/receipt":   {503, 403, 503, 401, 401},
	"GET /v1/drivers/:id/trips":   {503, 403, 503, 401, 401},
	"GET /v1/drivers/:id/shifts":  {503, 403, 503, 401, 401},
	"POST /v1/trips/:id/reassign": {403, 403, 200, 401, 401},
	"GET /v1/ops/summary":         {403, 403, 200, 401, 401},
	"GET /v1/ops/summary/stream":  {403, 403, 200, 401, 401},
	"GET /v1/ops/drivers/stream":  {403, 403, 200, 401, 401},
	"GET /v1/ops/supply":          {403, 403, 200, 401, 401},
	"GET /v1/ops/trips":           {403, 403, 200, 401, 401},
	// Webhook endpoints without an archive: past the guard, 503.
	"POST /v1/webhooks/endpoints":               {403, 503, 503, 401, 401},
	"GET /v1/webhooks/endpoints":                {403, 503, 503, 401, 401},
	"GET /v1/webhooks/endpoints/:id":            {403, 503, 503, 401, 401},
	"PATCH /v1/webhooks/endpoints/:id":          {403, 503, 503, 401, 401},
	"DELETE /v1/webhooks/endpoints/:id":         {403, 503, 503, 401, 401},
	"GET /v1/webhooks/endpoints/:id/deliveries": {403, 503, 503, 401, 401},
	"POST /v1/webhooks/endpoints/:id/replay":    {403, 503, 503, 401, 401},
	"POST /v1/apikeys":                          {403, 403, 201, 401, 401},
	"POST /v1/drivers/:id/suspend":              {403, 403, 409, 401, 401},
	"POST /v1/drivers/:id/reinstate":            {403, 403, 200, 401, 401},
	"GET /v1/drivers/:id/suspensions":           {403, 403, 200, 401, 401},
	"GET /v1/ops/drivers/suspended":             {403, 403, 200, 401, 401},
	"GET /v1/apikeys":                           {403, 403, 200, 401, 401},
	"DELETE /v1/apikeys/:id":                    {403, 403, 204, 401, 401},
	"POST /v1/webhooks/payments":                {401, 401, 401, 401, 401}, // HMAC-signed, no token
	"POST /v1/dev/token":                        {404, 404, 404, 401, 401},
	"GET /v1/drivers/:id/ws":                    {403, 403, 403, 401, 401}, // drivers only, even for ops
	"POST /v1/trips/:id/accept":                 {403, 403, 403, 401, 401},
	"POST /v1/trips/:id/decline":                {403, 403, 403, 401, 401},
	"POST /v1/trips/:id/arrived":                {403, 403, 403, 401, 401},
	"POST /v1/trips/:id/pickup":                 {403, 403, 403, 401, 401},
	"POST /v1/trips/:id/complete":               {403, 403, 403, 401, 401},
	"GET /v1/drivers/nearby":                    {403, 403, 403, 401, 401},
	"POST /v1/trips/:id/messages":               {403, 403, 403, 401, 401},
	"GET /v1/payments/:id":                      {403, 403, 403, 401, 401},
	"POST /v1/trips/:id/payment":                {403, 403, 403, 401, 401},
}

// TestAPIKeyAudit calls every registered route with API keys of each
// scope, a revoked one and a malformed one: a key reaches only the routes
// its scope opens (ops: the routes only ops may call), never one of a
// rider's or a driver's own.
func TestAPIKeyAudit(t *testing.T) {
	e := newAuditEnv(t)
	ctx := context.Background()
	toks := map[string]string{"key malformed": "hx_" + strings.Repeat("a", 13) + "_short"}
	for i, scope := range []string{tokens.ScopeTripsRead, tokens.ScopeWebhooksManage, tokens.ScopeOps, tokens.ScopeOps} {
		k, err := e.keys.Create(ctx, apikey.CreateRequest{Name: "audit " + scope, Scopes: []string{scope}})
		if err != nil {
			t.Fatal(err)
		}
		toks[keyCallers[i]] = k.Token
		if i == 3 {
			if err := e.keys.Revoke(ctx, k.Key.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	rows := map[string]auditRow{}
	for _, r := range auditTable {
		rows[r.route] = r
	}
	var routes []string
	for _, r := range e.srv.Echo().Routes() {
		if r.Method != echo.RouteNotFound {
			routes = append(routes, r.Method+" "+r.Path)
		}
	}
	sort.Strings(routes)
	shared := e.world(t)
	for _, route := range routes {
		row, ok := rows[route]
		if !ok {
			continue // TestAuthorizationAudit reports it
		}
		want, listed := keyAudit[route]
		if !listed {
			public := row.status[0]
			if public == 401 {
				public = 403
			}
			if public == 200 && auditAssets[route] && !web.Built(web.Files()) {
				public = 404 // without the web build (make web)
			}
			want = [5]int{public, public, public, 401, 401}
		}
		method := strings.Fields(route)[0]
		for i, who := range keyCallers {
			w := shared
			if method != "GET" {
				w = e.world(t)
			}
			body := row.body
			if body == "{ping}" {
				body = pingBody(52.5211, 13.405, time.Now(), 2)
			}
			if got := auditCall(t, method, e.ts.URL+w.expand(row.path), toks[who], body); got != want[i] {
				t.Errorf("%s as %s: %d, want %d", route, who, got, want[i])
			}
		}
	}
}
