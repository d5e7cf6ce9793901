package driver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
)

// TestSplitArray pins the fast path of DecodePingList: well-formed arrays
// split without the fallback decoder, anything else is refused.
func TestSplitArray(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string // nil with ok false
		ok   bool
	}{
		{`[]`, nil, true},
		{` [ ] `, nil, true},
		{`[1]`, []string{`1`}, true},
		{`[ {"a":1} , null,"x" ]`, []string{`{"a":1}`, `null`, `"x"`}, true},
		{`[{"s":"a \"]},{\\"},[[]]]`, []string{`{"s":"a \"]},{\\"}`, `[[]]`}, true},
		{`["\\",-1.5e3]`, []string{`"\\"`, `-1.5e3`}, true},
		{`[{"a":[{"b":"}"}]}]`, []string{`{"a":[{"b":"}"}]}`}, true},
		{`null`, nil, false},
		{`{"a":1}`, nil, false},
		{`[`, nil, false},
		{`[1,]`, nil, false},
		{`[,1]`, nil, false},
		{`[1 2]`, nil, false},
		{`[1]x`, nil, false},
		{`[{"a":1}}]`, nil, false},
		{`["a"b]`, nil, false},
		{`["abc]`, nil, false},
		{`[{"a":1]`, nil, false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := splitArray([]byte(tt.in))
			var gs []string
			for _, g := range got {
				gs = append(gs, string(g))
			}
			if ok != tt.ok || fmt.Sprintf("%q", gs) != fmt.Sprintf("%q", tt.want) {
				t.Fatalf("splitArray(%s) = %q, %v; want %q, %v", tt.in, gs, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzPlainString: the fast path for ts strings gives what json.Unmarshal
// gives, or declines.
func FuzzPlainString(f *testing.F) {
	for _, s := range []string{`"2026-11-25T12:00:00Z"`, `"a\\"b"`, `"\u00e9"`, "\"\xc3\xa9\"", `""`, `"`, `"\t"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := plainString(b)
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(b, &want); err != nil || got != want {
			t.Fatalf("plainString(%q) = %q, json.Unmarshal: %q %v", b, got, want, err)
		}
	})
}

var fastSeeds = []string{
	`{"lat":41.1,"lng":-8.6,"ts":"2026-11-25T12:00:00Z","seq":1}`,
	`{"lat":41.1579123,"lng":-8.6291456,"ts":1795608000000,"seq":17,"accuracy":5,"speed":10,"heading":90}`,
	` { "seq" : 3 , "ts" : "2026-11-25T12:00:00.5+01:00" , "lng" : 1e-3 , "lat" : -0 } `,
	`{"lat":1,"lng":1,"ts":1,"seq":1,"note":"a \"]},{\\","x":[{"y":[]}],"n":null,"b":true}`,
	`{"lng":-8.6,"ts":1,"seq":1}`, `{}`, `{"lat":1,"lng":2}`,
	`{"lat":1,"lng":1,"ts":1,"seq":1,"LAT":2}`, `{"lat":1,"lat":2}`, `{"lat":null}`, `{"lat":"1"}`,
	`{"lat":1e400}`, `{"seq":1.0}`, `{"seq":9223372036854775808}`, `{"ts":true}`, `{"ts":"yesterday"}`,
	`{"ts":1e300}`, `{"ts":-1}`, `{"ts":"2026-11-25T12:00:00\u005a"}`, `{"l\u0061t":1}`, `{"x":[}`, `{"lat":1}x`,
	`{"Lat":1,"lng":1,"ts":1,"seq":1}`, "{\"lat\u017f\":1}", `{"acc":1,"speedy":2}`,
}

// TestDecodeFastCovers: the pings apps send take the fast path.
func TestDecodeFastCovers(t *testing.T) {
	for _, s := range fastSeeds[:7] {
		d, ok := decodeFast([]byte(s))
		if !ok {
			t.Fatalf("decodeFast(%s) declined", s)
		}
		want, err := decodeSlow([]byte(s))
		if err != nil || fmt.Sprintf("%+v", d) != fmt.Sprintf("%+v", want) {
			t.Fatalf("decodeFast(%s) = %+v; encoding/json: %+v, %v", s, d, want, err)
		}
	}
}

// FuzzDecodeFast: the hand-written ping decoder gives exactly what
// encoding/json gives (the oracle), or declines.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := decodeFast(raw)
		if !ok {
			return
		}
		want, err := decodeSlow(raw)
		if err != nil {
			t.Fatalf("decodeFast(%q) = %+v, encoding/json: %v", raw, got, err)
		}
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w || !got.TS.Equal(want.TS) {
			t.Fatalf("decodeFast(%q):\n got %s\nwant %s", raw, g, w)
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

// FuzzDecodeBodyFast: a body decoded by the fast path gives exactly what
// encoding/json's path gives (the oracle); the path declines otherwise.
func FuzzDecodeBodyFast(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
		f.Add([]byte(`{"pings":[` + s + `]}`))
		f.Add([]byte(`{"x":1,"pings":[` + s + `,` + s + `],"y":{"z":[]}}`))
	}
	for _, s := range []string{`{"pings":null}`, `{"pings":[]}`, `{"pings":[1],"pings":[2]}`, `{"Pings":[]}`, `{"pings":[{"lat":1}],"z":tru}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotSingle, ok := decodeBodyFast(body, 3)
		if !ok {
			return
		}
		want, wantSingle, err := decodeBodySlow(body, 3)
		if err != nil {
			t.Fatalf("decodeBodyFast(%q) = %+v, encoding/json: %v", body, got, err)
		}
		if g, w := fmt.Sprintf("%v %+v", gotSingle, got), fmt.Sprintf("%v %+v", wantSingle, want); g != w {
			t.Fatalf("decodeBodyFast(%q):\n got %s\nwant %s", body, g, w)
		}
	})
}

// FuzzDecodeListFast: a list decodeListFast decodes gives exactly what
// splitArray and decodeOne give, element by element (DecodePingList's
// other path).
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
		list, ok := splitArray(raw)
		if !ok || len(list) != len(got) {
			t.Fatalf("decodeListFast(%q) = %d pings; splitArray: %d, %v", raw, len(got), len(list), ok)
		}
		for i, e := range list {
			want, err := decodeOne(e)
			if err != nil {
				t.Fatalf("decodeListFast(%q)[%d] = %+v; decodeOne(%q): %v", raw, i, got[i], e, err)
			}
			if g, w := fmt.Sprintf("%+v", got[i]), fmt.Sprintf("%+v", want); g != w {
				t.Fatalf("decodeListFast(%q)[%d]:\n got %s\nwant %s", raw, i, g, w)
			}
		}
	})
}
