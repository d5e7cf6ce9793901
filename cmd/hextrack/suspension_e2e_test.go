package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/driver"
)

// apiStatus is err's HTTP status and code (0, "" for nil; -1 for an error
// that is not the API's).
func apiStatus(err error) (int, string) {
	if err == nil {
		return 0, ""
	}
	var ae *client.Error
	if errors.As(err, &ae) {
		return ae.Status, ae.Code
	}
	return -1, err.Error()
}

// nearbyIDs are the drivers ops find near porto through node i.
func nearbyIDs(t *testing.T, c *cluster, i int, ops string) []string {
	t.Helper()
	list, err := client.New(c.base(i), ops, nil).Nearby(context.Background(), porto.lat, porto.lng, 3000, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	return ids
}

// TestDriverSuspension: ops suspend a driver on one node; its WebSocket on
// the other node closes with CloseSuspended, and every node refuses it
// going available, accepting, or connecting again, leaves it out of
// nearby and dispatch, and shows the suspension; reinstated, it works.
func TestDriverSuspension(t *testing.T) {
	c := mustCluster(t, 2)
	ctx := context.Background()
	a, b := c.driverID(), c.driverID()
	ops := c.token(t, "ops", "o-1")
	opsAt := func(i int) *client.Client { return client.New(c.base(i), ops, nil) }
	aTok := c.token(t, "driver", a)
	aREST := client.New(c.base(0), aTok, nil)

	// A nearest the pickup (WS on node 0), B a little further (WS on node 1).
	da := dialDriver(t, c, a, []string{c.base(0)}, nil)
	db := dialDriver(t, c, b, []string{c.base(1)}, nil)
	now := time.Now().Add(-3 * time.Second)
	da.Locations(pingsAt(now, 1, 3, time.Second)...)
	bp := pingsAt(now, 1, 3, time.Second)
	for i := range bp {
		bp[i].Lat += 0.003
	}
	db.Locations(bp...)
	flush(t, da)
	flush(t, db)
	for _, d := range []string{a, b} {
		if _, err := opsAt(0).SetStatus(ctx, d, "available"); err != nil {
			t.Fatal(err)
		}
	}
	if ids := nearbyIDs(t, c, 0, ops); !slices.Contains(ids, a) || !slices.Contains(ids, b) {
		t.Fatalf("nearby before: %v", ids)
	}
	tr := c.createTrip(t, 0, c.token(t, "rider", "r-"+a))
	offer := nextCommand(t, da, dispatch.CmdOffer, 5*time.Second)

	// Refusals before anything changes: who may suspend, what, with what body.
	for _, tc := range []struct {
		name, tok, driver, body string
		status                  int
		code                    string
	}{
		{"driver caller", aTok, a, `{"reason":"x"}`, 403, "forbidden"},
		{"rider caller", c.token(t, "rider", "r-x"), a, `{"reason":"x"}`, 403, "forbidden"},
		{"no token", "", a, `{"reason":"x"}`, 401, "unauthorized"},
		{"unknown driver", ops, "nobody-" + a, `{"reason":"x"}`, 404, "not_found"},
		{"no reason", ops, a, `{}`, 400, "invalid_argument"},
		{"blank reason", ops, a, `{"reason":"  "}`, 400, "invalid_argument"},
		{"not JSON", ops, a, `reason=x`, 400, "invalid_argument"},
		{"unknown field", ops, a, `{"reason":"x","until":1}`, 400, "invalid_argument"},
		{"reason too long", ops, a, `{"reason":"` + strings.Repeat("x", driver.MaxSuspensionReason+1) + `"}`, 400, "invalid_argument"},
		{"bad driver id", ops, "a%20b", `{"reason":"x"}`, 400, "invalid_argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base(1)+"/v1/drivers/"+tc.driver+"/suspend", strings.NewReader(tc.body))
			if tc.tok != "" {
				req.Header.Set("Authorization", "Bearer "+tc.tok)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb struct{ Error struct{ Code string } }
			_ = json.NewDecoder(resp.Body).Decode(&eb)
			if resp.StatusCode != tc.status || eb.Error.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, eb.Error.Code, tc.status, tc.code)
			}
		})
	}

	// Suspended on node 1.
	var st driver.State
	if _, _, err := opsAt(1).Do(ctx, http.MethodPost, "/v1/drivers/"+a+"/suspend", map[string]string{"reason": "documents expired"}, &st, nil); err != nil {
		t.Fatal(err)
	}
	if st.Status != driver.StatusSuspended || st.Suspension == nil || st.Suspension.Reason != "documents expired" ||
		st.Suspension.By != "ops:o-1" || time.Since(st.Suspension.At) > time.Minute {
		t.Fatalf("suspended state %+v (suspension %+v)", st, st.Suspension)
	}

	// Its WebSocket on node 0 closes with CloseSuspended and stays closed.
	select {
	case <-da.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the suspended driver's WebSocket is still open")
	}
	if !errors.Is(da.Err(), client.ErrSuspended) {
		t.Fatalf("WebSocket ended with %v, want ErrSuspended", da.Err())
	}
	select {
	case code := <-da.CloseCodes():
		if code != api.CloseSuspended {
			t.Fatalf("close code %d, want %d", code, api.CloseSuspended)
		}
	case <-time.After(time.Second):
		t.Fatal("no close code")
	}

	// Node 0, which did not process the suspension, refuses it all.
	if _, err := aREST.TripAction(ctx, tr, "accept", ""); !isCode(err, 403, "driver_suspended") {
		t.Fatalf("accept of the offered trip: %v", err)
	}
	if _, err := aREST.SetStatus(ctx, a, "available"); !isCode(err, 403, "driver_suspended") {
		t.Fatalf("going available: %v", err)
	}
	wsURL := "ws" + strings.TrimPrefix(c.base(0), "http") + "/v1/drivers/" + a + "/ws"
	conn, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Bearer " + aTok}})
	if err == nil {
		conn.Close()
		t.Fatal("a suspended driver's WebSocket handshake succeeded")
	}
	if resp == nil || resp.StatusCode != 403 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	var eb struct{ Error struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if eb.Error.Code != "driver_suspended" {
		t.Fatalf("handshake refused with %q", eb.Error.Code)
	}
	// Pings are still taken (tracking goes on) and keep it suspended.
	if _, err := aREST.SendLocations(ctx, a, pingsAt(time.Now().Add(-time.Second), 10, 1, 0)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if ids := nearbyIDs(t, c, i, ops); slices.Contains(ids, a) || !slices.Contains(ids, b) {
			t.Fatalf("node %d: nearby while suspended: %v", i, ids)
		}
	}
	// Dispatch: once A's offer lapses the trip goes to B, never back to A.
	o := nextCommand(t, db, dispatch.CmdOffer, 15*time.Second)
	if !strings.Contains(string(o.Data), tr) {
		t.Fatalf("B's offer %s, want trip %s", o.Data, tr)
	}
	page, err := aREST.DriverCommands(ctx, a, offer.ID, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range page.Commands {
		if cmd.Type == dispatch.CmdOffer {
			t.Fatalf("the suspended driver was offered %s", cmd.Data)
		}
	}

	// Visible to ops: the driver's record, the list, the audit log.
	got, err := opsAt(0).GetDriver(ctx, a)
	if err != nil || got.Status != driver.StatusSuspended {
		t.Fatalf("record: %+v %v", got, err)
	}
	var list struct{ Drivers []driver.SuspendedDriver }
	if _, _, err := opsAt(0).Do(ctx, http.MethodGet, "/v1/ops/drivers/suspended", nil, &list, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(list.Drivers, func(d driver.SuspendedDriver) bool { return d.ID == a && d.Reason == "documents expired" }) ||
		slices.ContainsFunc(list.Drivers, func(d driver.SuspendedDriver) bool { return d.ID == b }) {
		t.Fatalf("suspended list %+v", list.Drivers)
	}
	if _, _, err := client.New(c.base(0), aTok, nil).Do(ctx, http.MethodGet, "/v1/ops/drivers/suspended", nil, nil, nil); !isCode(err, 403, "forbidden") {
		t.Fatalf("a driver listing suspensions: %v", err)
	}

	// Reinstated on node 0: offline, then free to work again.
	st = driver.State{}
	if _, _, err := opsAt(0).Do(ctx, http.MethodPost, "/v1/drivers/"+a+"/reinstate", nil, &st, nil); err != nil {
		t.Fatal(err)
	}
	if st.Status != driver.StatusOffline || st.Suspension != nil {
		t.Fatalf("reinstated state %+v", st)
	}
	var hist struct {
		Suspension *driver.Suspension
		Log        []driver.SuspensionChange
	}
	if _, _, err := opsAt(1).Do(ctx, http.MethodGet, "/v1/drivers/"+a+"/suspensions", nil, &hist, nil); err != nil {
		t.Fatal(err)
	}
	if hist.Suspension != nil || len(hist.Log) != 2 || hist.Log[0].Action != "reinstate" || hist.Log[1].Action != "suspend" ||
		hist.Log[1].Reason != "documents expired" || hist.Log[0].By != "ops:o-1" {
		t.Fatalf("audit log %+v", hist)
	}
	if _, err := aREST.SetStatus(ctx, a, "available"); err != nil {
		t.Fatalf("available after reinstatement: %v", err)
	}
	if ids := nearbyIDs(t, c, 1, ops); !slices.Contains(ids, a) {
		t.Fatalf("nearby after reinstatement: %v", ids)
	}
	da2 := dialDriver(t, c, a, []string{c.base(1)}, nil)
	da2.Locations(pingsAt(time.Now(), 20, 1, 0)...)
	flush(t, da2)
}

// isCode: err is the API's status and code.
func isCode(err error, status int, code string) bool {
	st, c := apiStatus(err)
	return st == status && c == code
}

// TestSuspensionReachesTheArchive: with an archive open, a suspension and
// a reinstatement are the driver's status changes "suspended" and
// "offline", and the suspension ends its shift.
func TestSuspensionReachesTheArchive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	m, _ := runMainWith(t, Config{DataDir: dir})
	ctx := context.Background()
	anon := client.New("http://"+m.Addr(), "", nil)
	dtok, err := anon.DevToken(ctx, "driver", "d_susp", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otok, _ := anon.DevToken(ctx, "ops", "o_susp", time.Hour)
	if _, err := anon.WithToken(dtok).SetStatus(ctx, "d_susp", "available"); err != nil {
		t.Fatal(err)
	}
	ops := anon.WithToken(otok)
	if _, _, err := ops.Do(ctx, http.MethodPost, "/v1/drivers/d_susp/suspend", map[string]string{"reason": "audit"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ops.Do(ctx, http.MethodPost, "/v1/drivers/d_susp/reinstate", map[string]string{"reason": "cleared"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", filepath.Join(dir, archiveFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	statuses := func() []string {
		rows, err := db.QueryContext(ctx, "SELECT status FROM driver_status WHERE driver_id = 'd_susp' ORDER BY at_us")
		if err != nil {
			return nil
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if rows.Scan(&s) != nil {
				return nil
			}
			out = append(out, s)
		}
		if rows.Err() != nil {
			return nil // not yet readable: asked again
		}
		return out
	}
	want := []string{driver.StatusAvailable, driver.StatusSuspended, driver.StatusOffline}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(statuses(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("archived statuses %v, want %v", statuses(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
