package driver

import (
	"bytes"
	"fmt"
	"regexp"
	"testing"
)

var fastSeeds = []string{
	`{"lat":41.1,"lng":-8.6,"ts":"2026-11-25T12:00:00Z","seq":1}`,
	`{"lat":41.1579123,"lng":-8.6291456,"ts":1795608000000,"seq":17,"accuracy":5,"speed":10,"heading":90}`,
	` { "seq" : 3 , "ts" : "2026-11-25T12:00:00.5+01:00" , "lng" : 1e-3 , "lat" : -0 } `,
	`{"lat":1,"lng":1,"ts":1,"seq":1,"note":"a \"]},{\\","x":[{"y":[]}],"n":null,"b":true}`,
	`{"lng":-8.6,"ts":1,"seq":1}`, `{}`, `{"lat":1,"lng":2}`,
	`{"lat":1,"lng":1,"ts":1,"seq":1,"LAT":2}`, `{"lat":1,"lat":2}`, `{"lat":null}`, `{"lat":"1"}`,
	`{"lat":1e400}`, `{"seq":1.0}`, `{"seq":9223372036854775808}`, `{"ts":true}`, `{"ts":"yesterday"}`,
	`{"ts":1e300}`, `{"ts":-1}`, `{"ts":"2026-11-25T12:00:00\u005a"}`, `{"l\u0061t":1}`, `{"x":[}`, `{"lat":1}x`,
	`{"Lat":1,"lng":1,"ts":1,"seq":1}`, "{\"lat\u017f\":1}", `{"acc":1,"speedy":2}`, `{"ts":"2026-11-25T12:00:00\u00e9"}`,
}

// TestDecodeListFastCovers: the batches apps send take the fast path.
func TestDecodeListFastCovers(t *testing.T) {
	for _, s := range fastSeeds[:7] {
		raw := []byte("[" + s + "," + s + "]")
		got, ok := decodeListFast(raw, 500)
		if !ok {
			t.Fatalf("decodeListFast(%s) declined", raw)
		}
		want, err := decodeListSlow(raw, 500)
		if err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Fatalf("decodeListFast(%s) = %+v; encoding/json: %+v, %v", raw, got, want, err)
		}
	}
}

// FuzzDecodeListFast: a list the hand-written decoder decodes gives exactly
// what encoding/json gives (decodeListSlow, the oracle); it declines
// anything else.
func FuzzDecodeListFast(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte("[" + s + "]"))
		f.Add([]byte("[ " + s + " ,\n" + s + "\t]"))
		f.Add([]byte("[" + s + "," + s + "," + s + "," + s + "]"))
	}
	for _, s := range []string{`[]`, `[{}]`, `[{},]`, `[{}}]`, `[{"lat":1}{"lat":2}]`, `[{"lat":1},1]`, `[{"x":[{"y":"]}"}]}]`, `[{"lat":1}] x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = bytes.TrimSpace(raw)
		got, ok := decodeListFast(raw, 3)
		if !ok {
			return
		}
		want, err := decodeListSlow(raw, 3)
		if err != nil {
			t.Fatalf("decodeListFast(%q) = %+v; encoding/json: %v", raw, got, err)
		}
		if len(got) != len(want) {
			t.Fatalf("decodeListFast(%q) = %d pings; encoding/json %d", raw, len(got), len(want))
		}
		for i := range got {
			if g, w := fmt.Sprintf("%+v", got[i]), fmt.Sprintf("%+v", want[i]); g != w || !got[i].TS.Equal(want[i].TS) {
				t.Fatalf("decodeListFast(%q)[%d]:\n got %s\nwant %s", raw, i, g, w)
			}
		}
	})
}

// FuzzDecodeBodyFast: a batch body decoded by the fast path gives exactly
// what encoding/json's path gives (decodeBodySlow, the oracle); the path
// declines otherwise.
func FuzzDecodeBodyFast(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(`{"pings":[` + s + `]}`))
		f.Add([]byte(`{"x":1,"pings":[` + s + `,` + s + `],"y":{"z":[]}}`))
	}
	for _, s := range []string{`{"pings":null}`, `{"pings":[]}`, `{"pings":[1],"pings":[2]}`, `{"Pings":[]}`, `{"pings":[{"lat":1}],"z":tru}`, fastSeeds[0]} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := decodeBodyFast(body, 3)
		if !ok {
			return
		}
		want, single, err := decodeBodySlow(body, 3)
		if err != nil || single {
			t.Fatalf("decodeBodyFast(%q) = %+v, encoding/json: single %v, %v", body, got, single, err)
		}
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
			t.Fatalf("decodeBodyFast(%q):\n got %s\nwant %s", body, g, w)
		}
	})
}

// FuzzIsDecimal: isDecimal accepts what the ts number pattern accepts.
func FuzzIsDecimal(f *testing.F) {
	re := regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
	for _, s := range []string{"1795608000000", "-1", "01.50", "1e3", "1E+3", "1.", ".5", "1e", "-", "", "1x", "1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := isDecimal(b), re.Match(b); got != want {
			t.Fatalf("isDecimal(%q) = %v, pattern %v", b, got, want)
		}
	})
}
