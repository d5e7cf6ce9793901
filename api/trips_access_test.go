package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/client"

	"github.com/hextrack/hextrack/api/tokens"
)

// TestTripAuthorizationMatrix: who may read and act on a trip.
func TestTripAuthorizationMatrix(t *testing.T) {
	e := newTripEnv(t, api.StreamConfig{})
	ctx := context.Background()
	snap, rc := e.newTrip(t)
	id := snap.Trip.ID
	did, dc := e.newDriver(t)
	if _, err := dc.TripAction(ctx, id, "accept", ""); err != nil {
		t.Fatal(err)
	}
	_ = did
	share, err := rc.ShareTrip(ctx, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, orc := e.newTrip(t)
	oshare, err := orc.ShareTrip(ctx, other.Trip.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := rc.ShareTrip(ctx, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.RevokeShare(ctx, id, revoked.ID); err != nil {
		t.Fatal(err)
	}
	forged, _ := e.srv.Auth().Mint(tokens.Request{Role: "viewer", Sub: "x", Trip: id, ID: "s_forged", TTL: time.Hour})
	callers := map[string]string{
		"owner":         rc.Token(),
		"other rider":   e.tok(t, "rider", "someone"),
		"driver":        dc.Token(),
		"other driver":  e.tok(t, "driver", "d_other"),
		"ops":           e.tok(t, "ops", "o1"),
		"viewer":        share.Token,
		"other viewer":  oshare.Token,
		"revoked":       revoked.Token,
		"forged viewer": forged,
		"anonymous":     "",
	}
	base := e.ts.URL + "/v1/trips/" + id
	type req struct{ method, path, body string }
	reads := []req{{"GET", "", ""}, {"GET", "/events?limit=1", ""}, {"GET", "/path", ""}}
	msg := req{"POST", "/messages", `{"client_id":"c1","text":"hi"}`}
	drop := req{"POST", "/dropoff", `{"lat":52.4,"lng":13.3}`}
	shr := req{"POST", "/share", ``}
	want := map[string][4]int{ // reads, message, dropoff, share
		"owner":         {200, 201, 200, 201},
		"other rider":   {403, 403, 403, 403},
		"driver":        {200, 201, 403, 403},
		"other driver":  {403, 403, 403, 403},
		"ops":           {200, 201, 200, 201},
		"viewer":        {200, 403, 403, 403},
		"other viewer":  {403, 403, 403, 403},
		"revoked":       {401, 403, 403, 403},
		"forged viewer": {401, 403, 403, 403},
		"anonymous":     {401, 401, 401, 401},
	}
	for name, tok := range callers {
		t.Run(name, func(t *testing.T) {
			w := want[name]
			for _, r := range reads {
				if got := call(t, r.method, base+r.path, tok, r.body); got.status != w[0] {
					t.Errorf("%s %s: %d, want %d (%s)", r.method, r.path, got.status, w[0], got.body)
				}
			}
			for i, r := range []req{msg, drop, shr} {
				body := strings.Replace(r.body, "c1", "c_"+strings.ReplaceAll(name, " ", "_"), 1)
				if got := call(t, r.method, base+r.path, tok, body); got.status != w[i+1] {
					t.Errorf("%s %s: %d, want %d (%s)", r.method, r.path, got.status, w[i+1], got.body)
				}
			}
		})
	}
	// Cancel: only the owner (before pickup), the driver (hands back) and ops.
	if r := call(t, "POST", base+"/cancel", e.tok(t, "rider", "someone"), ""); r.status != 403 {
		t.Fatalf("other rider cancels: %d", r.status)
	}
	if r := call(t, "POST", base+"/cancel", share.Token, ""); r.status != 403 {
		t.Fatalf("viewer cancels: %d", r.status)
	}
	if r := call(t, "POST", base+"/accept", rc.Token(), ""); r.status != 403 {
		t.Fatalf("rider accepts: %d", r.status)
	}
	if r := call(t, "POST", base+"/reassign", dc.Token(), ""); r.status != 403 {
		t.Fatalf("driver reassigns: %d", r.status)
	}
}

// TestRevokedShareClosesStream: a viewer's open SSE stream ends within
// seconds of the link's revocation.
func TestRevokedShareClosesStream(t *testing.T) {
	e := newTripEnv(t, api.StreamConfig{AuthCheck: 200 * time.Millisecond})
	ctx := context.Background()
	snap, rc := e.newTrip(t)
	id := snap.Trip.ID
	share, err := rc.ShareTrip(ctx, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(share.URL, "access_token=") || !strings.Contains(share.URL, id) {
		t.Fatalf("share url %s", share.URL)
	}
	c := openSSE(t, e.eventsURL(id)+"?access_token="+share.Token, "", nil)
	if f := c.nextEvent(t, 5*time.Second); f.event != "snapshot" {
		t.Fatalf("viewer first frame %+v", f)
	}
	_, _ = rc.SendMessage(ctx, id, "m1", "visible to viewers")
	if f := c.nextEvent(t, 5*time.Second); f.event != "trip.message" {
		t.Fatalf("viewer frame %+v", f)
	}
	revokedAt := time.Now()
	if err := rc.RevokeShare(ctx, id, share.ID); err != nil {
		t.Fatal(err)
	}
	f := c.nextEvent(t, 5*time.Second)
	if f.event != "error" || !strings.Contains(f.data, "access_revoked") {
		t.Fatalf("want an error event, got %+v", f)
	}
	if _, err := c.next(); err == nil {
		t.Fatal("stream still open after revocation")
	}
	if d := time.Since(revokedAt); d > 3*time.Second {
		t.Fatalf("closed %v after revocation", d)
	}
	if r := call(t, "GET", e.eventsURL(id)+"?access_token="+share.Token, "", ""); r.status != http.StatusUnauthorized || r.code != "share_revoked" {
		t.Fatalf("revoked token still works: %d %s", r.status, r.code)
	}
}

func TestTripHTTPSemantics(t *testing.T) {
	e := newTripEnv(t, api.StreamConfig{})
	ctx := context.Background()
	rc := e.client(t, "rider", e.uid("r"))
	body, _ := json.Marshal(rideReq)
	create := func(key, b string) (int, http.Header, string) {
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/trips", strings.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+rc.Token())
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s client.Snapshot
		_ = json.NewDecoder(resp.Body).Decode(&s)
		return resp.StatusCode, resp.Header, s.Trip.ID
	}
	t.Run("idempotency", func(t *testing.T) {
		s1, h1, id1 := create("k-1", string(body))
		s2, h2, id2 := create("k-1", string(body))
		if s1 != 201 || s2 != 201 || id1 == "" || id1 != id2 || h1.Get("Idempotent-Replayed") != "" || h2.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("%d %d %s %s %v", s1, s2, id1, id2, h2)
		}
		other := strings.Replace(string(body), "Alexanderplatz", "Elsewhere", 1)
		if s, _, _ := create("k-1", other); s != http.StatusUnprocessableEntity {
			t.Fatalf("same key other body: %d", s)
		}
	})
	snap, err := rc.CreateTrip(ctx, rideReq, "")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	t.Run("etag polling", func(t *testing.T) {
		p, err := rc.GetTrip(ctx, id, "")
		if err != nil || p.ETag == "" || p.Every != 5*time.Second {
			t.Fatalf("%+v %v", p, err)
		}
		p2, err := rc.GetTrip(ctx, id, p.ETag)
		if err != nil || !p2.NotModified || p2.ETag != p.ETag || p2.Every != 5*time.Second {
			t.Fatalf("unchanged: %+v %v", p2, err)
		}
		// The cheap 304 check keeps the access check: a stranger, a
		// stranger's "*", no token and an unknown trip never get a 304.
		for _, tc := range []struct {
			name, tok, url, inm string
			want                int
		}{
			{"stranger", e.tok(t, "rider", "someone-else"), e.ts.URL + "/v1/trips/" + id, p.ETag, 403},
			{"stranger star", e.tok(t, "rider", "someone-else"), e.ts.URL + "/v1/trips/" + id, "*", 403},
			{"no token", "", e.ts.URL + "/v1/trips/" + id, p.ETag, 401},
			{"unknown trip", rc.Token(), e.ts.URL + "/v1/trips/t_nope_404", p.ETag, 404},
			{"owner", rc.Token(), e.ts.URL + "/v1/trips/" + id, p.ETag, 304},
		} {
			if r := call2(t, "GET", tc.url, tc.tok, "", map[string]string{"If-None-Match": tc.inm}); r.status != tc.want {
				t.Fatalf("%s with If-None-Match: %d %s, want %d", tc.name, r.status, r.body, tc.want)
			}
		}
		_, dc := e.newDriver(t)
		if _, err := dc.TripAction(ctx, id, "accept", ""); err != nil {
			t.Fatal(err)
		}
		p3, err := rc.GetTrip(ctx, id, p.ETag)
		if err != nil || p3.NotModified || p3.ETag == p.ETag || p3.Snapshot.Trip.Status != "driver_assigned" || p3.Every != 2*time.Second {
			t.Fatalf("changed: %+v %v", p3, err)
		}
	})
	t.Run("if-match 412", func(t *testing.T) {
		cur, _ := rc.GetTrip(ctx, id, "")
		r := call2(t, "POST", e.ts.URL+"/v1/trips/"+id+"/dropoff", rc.Token(), `{"lat":52.4,"lng":13.3}`, map[string]string{"If-Match": "1"})
		if r.status != 412 || !strings.Contains(r.body, `"version":`) {
			t.Fatalf("stale If-Match: %d %s", r.status, r.body)
		}
		r = call2(t, "POST", e.ts.URL+"/v1/trips/"+id+"/dropoff", rc.Token(), `{"lat":52.4,"lng":13.3}`, map[string]string{"If-Match": cur.ETag})
		if r.status != 200 {
			t.Fatalf("current ETag as If-Match: %d %s", r.status, r.body)
		}
		if r := call2(t, "POST", e.ts.URL+"/v1/trips/"+id+"/dropoff", rc.Token(), `{"lat":52.4,"lng":13.3}`, map[string]string{"If-Match": "nope"}); r.status != 400 {
			t.Fatalf("bad If-Match: %d", r.status)
		}
	})
	t.Run("409 carries the current status", func(t *testing.T) {
		r := call(t, "POST", e.ts.URL+"/v1/trips/"+id+"/pickup", e.tok(t, "ops", "o"), "")
		if r.status != 403 {
			t.Fatalf("ops pickup: %d", r.status)
		}
		_, dc := e.newDriver(t)
		r = call(t, "POST", e.ts.URL+"/v1/trips/"+id+"/accept", dc.Token(), "")
		if r.status != 409 || r.code != "invalid_transition" || !strings.Contains(r.body, `"status":"driver_assigned"`) {
			t.Fatalf("accept taken trip: %d %s", r.status, r.body)
		}
	})
	t.Run("bad bodies", func(t *testing.T) {
		for _, b := range []string{``, `{`, `{"kind":"ride"}`, `{"pickup":{"lat":"x"}}`, `{"extra":1}`} {
			if r := call(t, "POST", e.ts.URL+"/v1/trips", rc.Token(), b); r.status != 400 {
				t.Errorf("%q: %d", b, r.status)
			}
		}
		if r := call(t, "GET", e.ts.URL+"/v1/trips/bad%20id", rc.Token(), ""); r.status != 400 {
			t.Errorf("bad id: %d", r.status)
		}
		if r := call(t, "GET", e.ts.URL+"/v1/trips/t_nope", rc.Token(), ""); r.status != 404 {
			t.Errorf("unknown trip: %d", r.status)
		}
	})
}

func call2(t *testing.T, method, url, tok, body string, hdr map[string]string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: string(b)}
}
