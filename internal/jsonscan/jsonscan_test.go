package jsonscan_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hextrack/hextrack/internal/jsonscan"
)

type member struct {
	key, val string
	kind     jsonscan.Kind
	plain    bool
}

func scan(b []byte) ([]member, bool) {
	var out []member
	m := jsonscan.Open(b)
	for m.Next() {
		out = append(out, member{string(m.Key), string(m.Val), m.Kind, m.Plain})
	}
	return out, m.OK()
}

func TestMembers(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []member
		ok   bool
	}{
		{"empty object", ` { } `, nil, true},
		{"scalars", `{"a":1,"b" : -0.5e+3 ,"c":"x","d":true,"e":false,"f":null}`, []member{
			{"a", "1", jsonscan.Number, false}, {"b", "-0.5e+3", jsonscan.Number, false}, {"c", `"x"`, jsonscan.String, true},
			{"d", "true", jsonscan.True, false}, {"e", "false", jsonscan.False, false}, {"f", "null", jsonscan.Null, false}}, true},
		{"escaped string", `{"s":"a\"b\u00e9"}`, []member{{"s", `"a\"b\u00e9"`, jsonscan.String, false}}, true},
		{"non-ASCII string", "{\"s\":\"\xc3\xa9\"}", []member{{"s", "\"\xc3\xa9\"", jsonscan.String, false}}, true},
		{"nested", `{"p":[{"a":"]"},[]],"o":{"x":{}}}`, []member{
			{"p", `[{"a":"]"},[]]`, jsonscan.Array, false}, {"o", `{"x":{}}`, jsonscan.Object, false}}, true},
		{"escaped key", `{"l\u0061t":1}`, nil, false},
		{"non-ASCII key", "{\"\xc3\xa9\":1}", nil, false},
		{"trailing data", `{"a":1} x`, []member{{"a", "1", jsonscan.Number, false}}, false},
		{"trailing comma", `{"a":1,}`, []member{{"a", "1", jsonscan.Number, false}}, false},
		{"leading zero", `{"a":01}`, []member{{"a", "0", jsonscan.Number, false}}, false},
		{"bad exponent", `{"a":1e}`, nil, false},
		{"bad literal", `{"a":tru}`, nil, false},
		{"literal glued", `{"a":truex}`, []member{{"a", "true", jsonscan.True, false}}, false},
		{"control char", "{\"a\":\"\t\"}", nil, false},
		{"bad escape", `{"a":"\x"}`, nil, false},
		{"short unicode escape", `{"a":"\u12"}`, nil, false},
		{"missing colon", `{"a" 1}`, nil, false},
		{"not an object", `[1]`, nil, false},
		{"unbalanced", `{"a":[1,2}`, []member{{"a", "[1,2}", jsonscan.Array, false}}, false}, // delimited, not checked
		{"unterminated", `{"a":[1,2`, nil, false},
		{"empty", ``, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := scan([]byte(tt.in))
			if ok != tt.ok || len(got) != len(tt.want) {
				t.Fatalf("scan(%s) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("member %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestNumberEnd(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "12.5", "1e9", "1E-9", "-1.25e+10", "9007199254740993"} {
		if end, ok := jsonscan.NumberEnd([]byte(s), 0); !ok || end != len(s) {
			t.Errorf("NumberEnd(%q) = %d, %v", s, end, ok)
		}
	}
	for _, s := range []string{"", "-", "+1", ".5", "1.", "1e", "1e+", "-a"} {
		if end, ok := jsonscan.NumberEnd([]byte(s), 0); ok && end == len(s) {
			t.Errorf("NumberEnd(%q) accepted", s)
		}
	}
}

// FuzzMembers: whatever jsonscan reads completely is valid JSON (once its
// nested values are), with the keys and values encoding/json finds.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":"x","c":[1,{"d":null}],"e":true}`, `{"s":"a\"b\u00e9"}`,
		`{"a":-0.5e+3}`, `{"a":01}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":1}x`, `{"a":[}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := scan(b)
		if !ok {
			return
		}
		for _, g := range got {
			if (g.kind == jsonscan.Array || g.kind == jsonscan.Object) && !json.Valid([]byte(g.val)) {
				return // the caller's check would refuse it
			}
		}
		if !json.Valid(b) {
			t.Fatalf("scanned %q completely, but it is not valid JSON", b)
		}
		dec := map[string]json.RawMessage{}
		if err := json.Unmarshal(b, &dec); err != nil {
			t.Fatalf("json.Unmarshal(%q): %v", b, err)
		}
		for _, g := range got {
			if g.plain {
				var s string
				if err := json.Unmarshal([]byte(g.val), &s); err != nil || s != g.val[1:len(g.val)-1] {
					t.Fatalf("plain string %q decodes to %q (%v)", g.val, s, err)
				}
			}
		}
		// The last of duplicate keys wins in encoding/json.
		last := map[string]string{}
		for _, g := range got {
			last[g.key] = g.val
		}
		for k, v := range last {
			if string(dec[k]) != v {
				t.Fatalf("%q: key %q = %s, encoding/json %s", b, k, v, dec[k])
			}
		}
	})
}

// TestOpenIn: an object read inside a larger input ends at its closing
// brace; End is just after it.
func TestOpenIn(t *testing.T) {
	for _, c := range []struct {
		in   string
		at   int
		keys string
		end  int // -1: not OK
	}{
		{`[{"a":1,"b":[{"c":"}"}]} ,{"d":2}]`, 1, "a,b", 24},
		{`[{"a":1,"b":[{"c":"}"}]} ,{"d":2}]`, 26, "d", 33},
		{`[ {}]`, 1, "", 4},
		{`[1,{}]`, 1, "", -1},
		{`[{"a":1 "b":2}]`, 1, "a", -1},
		{`[{"a":1,`, 1, "a", -1},
	} {
		m := jsonscan.OpenIn([]byte(c.in), c.at)
		var keys []string
		for m.Next() {
			keys = append(keys, string(m.Key))
		}
		if got := strings.Join(keys, ","); got != c.keys || m.OK() != (c.end >= 0) || m.OK() && m.End() != c.end {
			t.Errorf("OpenIn(%q, %d): keys %q, OK %v, End %d; want %q, end %d", c.in, c.at, got, m.OK(), m.End(), c.keys, c.end)
		}
	}
}
