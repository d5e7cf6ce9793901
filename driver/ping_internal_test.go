package driver

import (
	"encoding/json"
	"fmt"
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
