package payment_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/payment"
)

var (
	oldSecret = []byte("whsec_old_0123456789")
	newSecret = []byte("whsec_new_9876543210")
)

func TestVerifySignature(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	body := []byte(`{"id":"evt_1","type":"payment.succeeded"}`)
	valid := payment.Sign(newSecret, now, body)
	v1 := func(h string) string { _, s, _ := strings.Cut(h, "v1="); return s }
	tests := []struct {
		name    string
		header  string
		body    []byte
		secrets [][]byte
		ok      bool
	}{
		{"valid", valid, body, [][]byte{newSecret}, true},
		{"wrong secret", payment.Sign([]byte("whsec_attacker"), now, body), body, [][]byte{newSecret}, false},
		{"stale timestamp (6 min)", payment.Sign(newSecret, now.Add(-6*time.Minute), body), body, [][]byte{newSecret}, false},
		{"future timestamp (6 min)", payment.Sign(newSecret, now.Add(6*time.Minute), body), body, [][]byte{newSecret}, false},
		{"4 min old is fine", payment.Sign(newSecret, now.Add(-4*time.Minute), body), body, [][]byte{newSecret}, true},
		{"missing header", "", body, [][]byte{newSecret}, false},
		{"garbled: no pairs", "garbage", body, [][]byte{newSecret}, false},
		{"garbled: no v1", "t=1750000000", body, [][]byte{newSecret}, false},
		{"garbled: no t", "v1=" + v1(valid), body, [][]byte{newSecret}, false},
		{"garbled: bad hex", "t=1750000000,v1=zz" + v1(valid)[2:], body, [][]byte{newSecret}, false},
		{"garbled: short mac", "t=1750000000,v1=" + v1(valid)[:32], body, [][]byte{newSecret}, false},
		{"garbled: t not a number", "t=abc,v1=" + v1(valid), body, [][]byte{newSecret}, false},
		{"garbled: two t", "t=1750000000,t=1750000000,v1=" + v1(valid), body, [][]byte{newSecret}, false},
		{"timestamp swapped (mac over another t)", "t=1750000001,v1=" + v1(valid), body, [][]byte{newSecret}, false},
		{"tampered body", valid, []byte(`{"id":"evt_1","type":"payment.failed"}`), [][]byte{newSecret}, false},
		{"body with trailing newline", valid, append(append([]byte{}, body...), '\n'), [][]byte{newSecret}, false},
		{"rotation: old secret still configured", payment.Sign(oldSecret, now, body), body, [][]byte{newSecret, oldSecret}, true},
		{"rotation: new secret", valid, body, [][]byte{newSecret, oldSecret}, true},
		{"rotation: retired secret", payment.Sign(oldSecret, now, body), body, [][]byte{newSecret}, false},
		{"two v1, second valid", "t=1750000000,v1=" + strings.Repeat("ab", 32) + ",v1=" + v1(valid), body, [][]byte{newSecret}, true},
		{"unknown scheme ignored", valid + ",v0=deadbeef", body, [][]byte{newSecret}, true},
		{"spaces after commas", "t=1750000000, v1=" + v1(valid), body, [][]byte{newSecret}, true},
		{"no secrets configured", valid, body, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := payment.VerifySignature(tc.header, tc.body, tc.secrets, now, 5*time.Minute)
			if tc.ok && err != nil {
				t.Fatalf("want valid, got %v", err)
			}
			if !tc.ok && !errors.Is(err, payment.ErrSignature) {
				t.Fatalf("want ErrSignature, got %v", err)
			}
		})
	}
}

func TestParseEvent(t *testing.T) {
	pid := "pay_0123456789abcdef_t_abc"
	good := func(mod func(m map[string]any)) string {
		m := map[string]any{"id": "evt_1", "type": "payment.succeeded", "created": 1750000000,
			"data": map[string]any{"payment_id": pid, "amount": 1234, "currency": "EUR"}}
		if mod != nil {
			mod(m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	data := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { m["data"].(map[string]any)[k] = v }
	}
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"valid", good(nil), true},
		{"valid failed", good(func(m map[string]any) { m["type"] = "payment.failed" }), true},
		{"unknown fields allowed", good(func(m map[string]any) { m["livemode"] = false }), true},
		{"empty", "", false},
		{"not JSON", "hello", false},
		{"array", "[]", false},
		{"trailing data", good(nil) + "{}", false},
		{"missing id", good(func(m map[string]any) { delete(m, "id") }), false},
		{"id without evt_", good(func(m map[string]any) { m["id"] = "abc" }), false},
		{"id with spaces", good(func(m map[string]any) { m["id"] = "evt_a b" }), false},
		{"unknown type", good(func(m map[string]any) { m["type"] = "payment.refunded" }), false},
		{"created missing", good(func(m map[string]any) { delete(m, "created") }), false},
		{"created string", good(func(m map[string]any) { m["created"] = "yesterday" }), false},
		{"bad payment id", good(data("payment_id", "pay_x")), false},
		{"fractional amount", good(data("amount", 12.5)), false},
		{"negative amount", good(data("amount", -1)), false},
		{"amount string", good(data("amount", "12")), false},
		{"lowercase currency", good(data("currency", "eur")), false},
		{"data not an object", good(func(m map[string]any) { m["data"] = 3 }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := payment.ParseEvent([]byte(tc.body))
			if tc.ok {
				if err != nil || e.Data.PaymentID != pid {
					t.Fatalf("want valid, got %+v %v", e, err)
				}
				return
			}
			if !errors.Is(err, payment.ErrInvalidEvent) {
				t.Fatalf("want ErrInvalidEvent, got %v", err)
			}
		})
	}
}

func FuzzParseSignature(f *testing.F) {
	now := time.Unix(1_750_000_000, 0)
	body := []byte(`{"id":"evt_1"}`)
	f.Add(payment.Sign(newSecret, now, body))
	f.Add("t=1,v1=")
	f.Add("t=1750000000,v1=" + strings.Repeat("0", 64) + ",v1=" + strings.Repeat("f", 64))
	f.Add(",,,=")
	f.Add("t=-1,v1=00")
	f.Fuzz(func(t *testing.T, h string) {
		sig, err := payment.ParseSignature(h)
		if err != nil {
			if !errors.Is(err, payment.ErrSignature) {
				t.Fatalf("error %v is not ErrSignature", err)
			}
			return
		}
		if sig.T <= 0 || len(sig.V1) == 0 {
			t.Fatalf("accepted %q as %+v", h, sig)
		}
		for _, v := range sig.V1 {
			if len(v) != 32 {
				t.Fatalf("v1 of %d bytes", len(v))
			}
		}
		// It verifies only if one v1 is the real secret's MAC of this body.
		err = payment.VerifySignature(h, body, [][]byte{newSecret}, time.Unix(sig.T, 0), 5*time.Minute)
		_, want, _ := strings.Cut(payment.Sign(newSecret, time.Unix(sig.T, 0), body), "v1=")
		real := false
		for _, v := range sig.V1 {
			real = real || hex.EncodeToString(v) == want
		}
		if (err == nil) != real {
			t.Fatalf("%q: verify %v, carries the real MAC %v", h, err, real)
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1","type":"payment.succeeded","created":1750000000,"data":{"payment_id":"pay_0123456789abcdef_t_1","amount":1234,"currency":"EUR"}}`))
	f.Add([]byte(`{"id":"evt_1","type":"payment.failed","created":1,"data":{}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"id":"evt_\u0000"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := payment.ParseEvent(b)
		if err != nil {
			if !errors.Is(err, payment.ErrInvalidEvent) {
				t.Fatalf("error %v is not ErrInvalidEvent", err)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if _, ok := payment.TripOf(e.Data.PaymentID); !ok || e.Created <= 0 || e.Data.Amount < 0 ||
			(e.Type != payment.WebhookSucceeded && e.Type != payment.WebhookFailed) {
			t.Fatalf("accepted %+v", e)
		}
	})
}
