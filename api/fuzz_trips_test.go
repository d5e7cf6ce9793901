package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// FuzzTripCursor feeds untrusted cursors to long-polling (after=) and SSE
// (Last-Event-ID): never a 5xx; a long-poll answers 200, 400 or 410; an SSE
// stream always opens and its first event is a reset unless the cursor is
// a valid position of the trip's stream.
func FuzzTripCursor(f *testing.F) {
	for _, s := range []string{"", "0", "0-0", "1-0", "abc", "-1", "1-", "-", "01-1", "18446744073709551615-18446744073709551615",
		"18446744073709551616-0", " 1-0", "1-0\n", "1732521600000-0", "9999999999999-0"} {
		f.Add(s)
	}
	e := newTripEnv(f, api.StreamConfig{})
	snap, rc := e.newTrip(f)
	id := snap.Trip.ID
	for i := range 3 {
		_, _ = rc.SendMessage(context.Background(), id, "f"+string(rune('a'+i)), "x")
	}
	evs, _, _ := e.feed.Read(context.Background(), trip.Topic(id), "", 10)
	for _, ev := range evs {
		f.Add(ev.ID)
	}
	valid := map[string]bool{}
	for _, ev := range evs {
		valid[ev.ID] = true
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		r := call(t, "GET", e.eventsURL(id)+"?limit=5&after="+url.QueryEscape(cursor), rc.Token(), "")
		switch r.status {
		case 200, 400, 410:
		default:
			t.Fatalf("after=%q: %d %s", cursor, r.status, r.body)
		}
		if r.status == 200 && cursor != "" {
			if _, err := feed.ParseID(cursor); err != nil {
				t.Fatalf("invalid cursor %q accepted", cursor)
			}
		}
		if strings.IndexFunc(cursor, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 || !utf8.ValidString(cursor) {
			return // not sendable as a header value
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", e.eventsURL(id), nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+rc.Token())
		req.Header.Set("Last-Event-ID", cursor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("Last-Event-ID %q: %d", cursor, resp.StatusCode)
		}
		c := &sseConn{resp: resp}
		c.br = newReader(resp.Body)
		cv := strings.TrimSpace(cursor)
		if cv == "" || valid[cv] {
			return // fresh connect or a real position: no reset expected
		}
		fr := c.nextEvent(t, 5*time.Second)
		if fr.event != "reset" {
			if _, err := feed.ParseID(cv); err != nil {
				t.Fatalf("Last-Event-ID %q: first event %q, want reset", cursor, fr.event)
			}
		}
	})
}

// FuzzChatBody posts arbitrary bodies as chat messages: never a 5xx, and a
// message that is accepted has a valid client id and a clean, bounded text.
func FuzzChatBody(f *testing.F) {
	for _, s := range []string{`{"client_id":"a","text":"hi"}`, `{"client_id":"a","text":""}`, `{"client_id":"","text":"x"}`,
		`{"client_id":"a b","text":"x"}`, `{"client_id":"a","text":"\u0007"}`, `{"client_id":"a","text":"\ud800"}`,
		`{"client_id":"a","text":"` + strings.Repeat("é", 1001) + `"}`, `{"client_id":"a","text":"line\nbreak"}`,
		`{"client_id":"a","text":"x","extra":1}`, `{`, `[]`, `null`, `{"client_id":1}`, "\xff"} {
		f.Add(s)
	}
	e := newTripEnv(f, api.StreamConfig{})
	snap, rc := e.newTrip(f)
	id := snap.Trip.ID
	f.Fuzz(func(t *testing.T, body string) {
		r := call(t, "POST", e.ts.URL+"/v1/trips/"+id+"/messages", rc.Token(), body)
		switch r.status {
		case 200, 201:
			var p struct {
				EventID string `json:"event_id"`
			}
			if err := json.Unmarshal([]byte(r.body), &p); err != nil || p.EventID == "" {
				t.Fatalf("reply %s", r.body)
			}
			var in trip.MessageRequest
			if err := json.Unmarshal([]byte(body), &in); err != nil {
				t.Fatalf("accepted an undecodable body %q", body)
			}
			text := strings.TrimSpace(in.Text)
			if !trip.ValidID(in.ClientID) || text == "" || utf8.RuneCountInString(text) > 1000 || !utf8.ValidString(text) {
				t.Fatalf("accepted %q", body)
			}
			for _, c := range text {
				if c != '\n' && c != '\t' && unicode.IsControl(c) {
					t.Fatalf("accepted a control character in %q", body)
				}
			}
		case 400, 413:
		default:
			t.Fatalf("%q: %d %s", body, r.status, r.body)
		}
	})
}
