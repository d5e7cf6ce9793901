package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hextrack/hextrack/driver"

	"github.com/hextrack/hextrack/api/tokens"
)

// TestWebSocketLocationsMatchREST: a locations message is decoded and
// checked exactly as the same batch POSTed to /locations: the same error
// code and message for an undecodable batch, the same per-ping rejections
// otherwise.
func TestWebSocketLocationsMatchREST(t *testing.T) {
	e := newAuditEnvDrivers(t, driver.Config{Limits: driver.Limits{MaxBatch: 3}})
	wsTok := e.mint(t, tokens.RoleDriver, "d_wsm", "", "")
	restTok := e.mint(t, tokens.RoleDriver, "d_rsm", "", "")
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.ts.URL, "http")+"/v1/drivers/d_wsm/ws",
		http.Header{"Authorization": {"Bearer " + wsTok}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteJSON(map[string]string{"type": "hello"})
	t0 := time.Now().Add(-time.Minute)
	ok := func(seq int) string { return pingBody(52.52, 13.405, t0.Add(time.Duration(seq)*time.Second), seq) }
	for _, tc := range []struct {
		name  string
		pings []string
		ack   bool // else an error reply, like REST's 4xx
	}{
		{"too many", []string{ok(1), ok(2), ok(3), ok(4)}, false},
		{"string lat", []string{ok(1), `{"lat":"52.5","lng":13.4,"ts":1,"seq":2}`}, false},
		{"bad ts", []string{`{"lat":52.5,"lng":13.4,"ts":"yesterday","seq":2}`}, false},
		{"ts of the wrong type", []string{` { "lat":52.5, "lng":13.4, "ts":true, "seq":2 } `}, false},
		{"empty", nil, false},
		{"missing field and out of range", []string{ok(5), `{"lng":13.4,"ts":1,"seq":6}`, `{"lat":95,"lng":13.4,"ts":"` + t0.Format(time.RFC3339) + `","seq":7}`}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := "[" + strings.Join(tc.pings, ",") + "]"
			if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"locations","ref":"r","pings":`+list+`}`)); err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			var got struct {
				Type     string             `json:"type"`
				Ref      string             `json:"ref"`
				Code     string             `json:"code"`
				Message  string             `json:"message"`
				Rejected []driver.Rejection `json:"rejected"`
			}
			for got.Ref != "r" {
				got.Ref = ""
				if err := ws.ReadJSON(&got); err != nil {
					t.Fatal(err)
				}
			}
			r := call(t, "POST", e.ts.URL+"/v1/drivers/d_rsm/locations", restTok, `{"pings":`+list+`}`)
			var want struct {
				Error    struct{ Code, Message string }
				Rejected []driver.Rejection `json:"rejected"`
			}
			if err := json.Unmarshal([]byte(r.body), &want); err != nil {
				t.Fatalf("REST %d %s", r.status, r.body)
			}
			if tc.ack {
				gr, _ := json.Marshal(got.Rejected)
				wr, _ := json.Marshal(want.Rejected)
				if got.Type != "ack" || r.status != 200 || string(gr) != string(wr) || len(want.Rejected) != 2 {
					t.Fatalf("WS %+v, REST %d %s", got, r.status, r.body)
				}
				return
			}
			if got.Type != "error" || r.status/100 != 4 || got.Code != want.Error.Code || got.Message != want.Error.Message || got.Message == "" {
				t.Fatalf("WS %+v, REST %d %s", got, r.status, r.body)
			}
		})
	}
}

// TestWebSocketMalformedLocations: a locations message whose pings are not
// valid JSON is refused as malformed JSON, as before the batch was read
// lazily, even when its first pings decode.
func TestWebSocketMalformedLocations(t *testing.T) {
	e := newAuditEnvDrivers(t, driver.Config{})
	tok := e.mint(t, tokens.RoleDriver, "d_wsbad", "", "")
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.ts.URL, "http")+"/v1/drivers/d_wsbad/ws",
		http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteJSON(map[string]string{"type": "hello"})
	good := pingBody(52.52, 13.405, time.Now().Add(-time.Minute), 1)
	for _, pings := range []string{`[` + good + `,{"lat":1,}]`, `[` + good + `,{"lat":1} x]`, `[` + good + `,"\q"]`} {
		msg := `{"type":"locations","ref":"r","pings":` + pings + `}`
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got struct{ Type, Ref, Code, Message string }
		for got.Type != "error" && got.Type != "ack" {
			if err := ws.ReadJSON(&got); err != nil {
				t.Fatal(err)
			}
		}
		if got.Type != "error" || got.Ref != "" || got.Code != "invalid_json" || got.Message != "malformed JSON message" {
			t.Fatalf("%s: reply %+v, want the malformed JSON error", msg, got)
		}
	}
}
