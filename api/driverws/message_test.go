package driverws

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hextrack/hextrack/driver"
)

func TestDecodeWSMessage(t *testing.T) {
	for _, tc := range []struct {
		name, in, typ, code string
	}{
		{"hello", `{"type":"hello"}`, "hello", ""},
		{"hello with id", `{"type":"hello","last_id":"1732521600000-3"}`, "hello", ""},
		{"hello bad id", `{"type":"hello","last_id":"yesterday"}`, "", "invalid_message"},
		{"locations", `{"type":"locations","pings":[{"lat":1,"lng":2,"ts":1,"seq":1}]}`, "locations", ""},
		{"locations without pings", `{"type":"locations"}`, "", "invalid_message"},
		{"locations pings object", `{"type":"locations","pings":{"lat":1}}`, "", "invalid_message"},
		{"ack", `{"type":"ack","id":"1-0"}`, "ack", ""},
		{"ack without id", `{"type":"ack"}`, "", "invalid_message"},
		{"accept", `{"type":"accept","trip":"t_1"}`, "accept", ""},
		{"accept bad trip", `{"type":"accept","trip":"../x"}`, "", "invalid_message"},
		{"complete", `{"type":"complete","trip":"t_1","ref":"r1"}`, "complete", ""},
		{"unknown type", `{"type":"teleport"}`, "", "invalid_message"},
		{"no type", `{}`, "", "invalid_message"},
		{"array", `[1,2]`, "", "invalid_json"},
		{"null", `null`, "", "invalid_json"},
		{"type of the wrong type", `{"type":1}`, "", "invalid_json"},
		{"invalid JSON in an unknown field", `{"type":"hello","x":[}`, "", "invalid_json"},
		{"locations pings string", `{"type":"locations","pings":"x"}`, "", "invalid_message"},
		{"escaped type", `{"type":"hell\u006f"}`, "hello", ""},
		{"type key in another case", `{"TYPE":"ack","id":"1-0"}`, "ack", ""},
		{"truncated", `{"type":"hello"`, "", "invalid_json"},
		{"empty", ``, "", "invalid_json"},
		{"unknown fields ignored", `{"type":"hello","client":"v2"}`, "hello", ""},
		{"long ref", `{"type":"hello","ref":"` + strings.Repeat("r", 65) + `"}`, "", "invalid_message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeWSMessage([]byte(tc.in))
			if tc.code != "" {
				var ae *MessageError
				if !errors.As(err, &ae) || ae.Code != tc.code {
					t.Fatalf("err %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil || m.Type != tc.typ {
				t.Fatalf("%+v %v, want type %s", m, err, tc.typ)
			}
		})
	}
}

// FuzzDecodeWSMessage: any input gives a valid message or a *MessageError
// with a 400 code (invalid_json, invalid_message) whose text is safe to send; a valid message re-encodes and
// decodes to the same type.
func FuzzDecodeWSMessage(f *testing.F) {
	for _, s := range []string{`{"type":"hello","last_id":"1-0"}`, `{"type":"locations","pings":[{"lat":1,"lng":2,"ts":"2024-01-01T00:00:00Z","seq":1}]}`,
		`{"type":"ack","id":"1732521600000-0"}`, `{"type":"accept","trip":"t_1","ref":"x"}`, `{"type":"decline","trip":"t","reason":"busy"}`,
		`{"type":`, `null`, `{"type":"locations","pings":null}`, "\xff", `{"type":"hello","last_id":"99999999999999999999-0"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeWSMessage(b)
		if err != nil {
			var ae *MessageError
			if !errors.As(err, &ae) || ae.Code != "invalid_json" && ae.Code != "invalid_message" || len(ae.Message) > 200 {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if m.Type == "" || len(m.Ref) > 64 {
			t.Fatalf("accepted %+v", m)
		}
		if m.pingsUnchecked && !json.Valid(m.Pings) {
			return // locations refuses it as malformed JSON (TestWebSocketMalformedLocations)
		}
		again, _ := json.Marshal(m)
		m2, err := decodeWSMessage(again)
		if err != nil || m2.Type != m.Type || m2.Trip != m.Trip || m2.ID != m.ID || m2.LastID != m.LastID {
			t.Fatalf("re-decode of %s: %+v %v", again, m2, err)
		}
	})
}

// FuzzDecodeWSFast: the hand-written decoder gives what json.Unmarshal
// gives (the oracle), or declines; pings it only delimited are refused
// later unless valid (locations).
func FuzzDecodeWSFast(f *testing.F) {
	for _, s := range []string{`{"type":"locations","ref":"r1","pings":[{"lat":1,"lng":2,"ts":1,"seq":1}]}`,
		`{"type":"hello","last_id":"1-0","client":{"v":[2]}}`, `{"type":"ack","id":"1-0","Type":"x"}`,
		`{"type":"accept","trip":"t_1","reason":"a\"b"}`, `{"type":"locations","pings":[tru]}`, `{"type":"hello","pings":[]}`,
		`{"type":"locations","pings":null}`, `{"type":"locations","type":"hello"}`, "{\"type\":\"\xc3\xa9\"}", `{"ref":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeWSFast(b)
		if !ok {
			return
		}
		if got.pingsUnchecked && !json.Valid(got.Pings) {
			return
		}
		var want wsMessage
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("decodeWSFast(%q) = %+v; json.Unmarshal: %v", b, got, err)
		}
		got.pingsUnchecked = false
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w || string(got.Pings) != string(want.Pings) {
			t.Fatalf("decodeWSFast(%q):\n got %s\nwant %s", b, g, w)
		}
	})
}

// BenchmarkDecodeWSMessage: a locations message of 50 pings, as the ingest
// bench sends it, decoded and its pings read (decodeWSMessage then
// DecodePingList: the WebSocket ingest path up to the Lua call).
func BenchmarkDecodeWSMessage(b *testing.B) {
	ps := make([]string, 50)
	for i := range ps {
		ps[i] = fmt.Sprintf(`{"lat":%v,"lng":-8.6,"ts":"2026-11-25T12:00:%02dZ","seq":%d,"accuracy":5}`, 41.1+float64(i)*1e-5, i, i+1)
	}
	msg := []byte(`{"type":"locations","ref":"b1","pings":[` + strings.Join(ps, ",") + `]}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := decodeWSMessage(msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := driver.DecodePingList(m.Pings, 500); err != nil {
			b.Fatal(err)
		}
	}
}
