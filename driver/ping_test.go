package driver_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestValidate(t *testing.T) {
	ok := driver.Ping{Pos: geo.Point{Lat: 41.15, Lng: -8.61}, TS: now, Seq: 1,
		Accuracy: math.NaN(), Speed: math.NaN(), Heading: math.NaN()}
	with := func(f func(p *driver.Ping)) driver.Ping { p := ok; f(&p); return p }
	tests := []struct {
		name string
		p    driver.Ping
		want string
	}{
		{"valid", ok, ""},
		{"valid with optionals", with(func(p *driver.Ping) { p.Accuracy, p.Speed, p.Heading = 5, 12, 359.9 }), ""},
		{"lat 91", with(func(p *driver.Ping) { p.Pos.Lat = 91 }), driver.ReasonLatRange},
		{"lat -90.0001", with(func(p *driver.Ping) { p.Pos.Lat = -90.0001 }), driver.ReasonLatRange},
		{"lng -181", with(func(p *driver.Ping) { p.Pos.Lng = -181 }), driver.ReasonLngRange},
		{"lng 180.5", with(func(p *driver.Ping) { p.Pos.Lng = 180.5 }), driver.ReasonLngRange},
		{"lat NaN", with(func(p *driver.Ping) { p.Pos.Lat = math.NaN() }), driver.ReasonNotFinite},
		{"lng +Inf", with(func(p *driver.Ping) { p.Pos.Lng = math.Inf(1) }), driver.ReasonNotFinite},
		{"null island", with(func(p *driver.Ping) { p.Pos = geo.Point{} }), driver.ReasonNullIsland},
		{"seq 0", with(func(p *driver.Ping) { p.Seq = 0 }), driver.ReasonBadSeq},
		{"seq negative", with(func(p *driver.Ping) { p.Seq = -5 }), driver.ReasonBadSeq},
		{"no ts", with(func(p *driver.Ping) { p.TS = time.Time{} }), driver.ReasonMissingField},
		{"ts 1h ahead", with(func(p *driver.Ping) { p.TS = now.Add(time.Hour) }), driver.ReasonFuture},
		{"ts 29s ahead", with(func(p *driver.Ping) { p.TS = now.Add(29 * time.Second) }), ""},
		{"ts 25h old", with(func(p *driver.Ping) { p.TS = now.Add(-25 * time.Hour) }), driver.ReasonTooOld},
		{"ts 23h old", with(func(p *driver.Ping) { p.TS = now.Add(-23 * time.Hour) }), ""},
		{"accuracy negative", with(func(p *driver.Ping) { p.Accuracy = -1 }), driver.ReasonBadAccuracy},
		{"accuracy huge", with(func(p *driver.Ping) { p.Accuracy = 1e6 }), driver.ReasonBadAccuracy},
		{"speed negative", with(func(p *driver.Ping) { p.Speed = -3 }), driver.ReasonBadSpeed},
		{"speed 150 m/s", with(func(p *driver.Ping) { p.Speed = 150 }), driver.ReasonBadSpeed},
		{"heading 360", with(func(p *driver.Ping) { p.Heading = 360 }), driver.ReasonBadHeading},
		{"heading -1", with(func(p *driver.Ping) { p.Heading = -1 }), driver.ReasonBadHeading},
		{"heading Inf", with(func(p *driver.Ping) { p.Heading = math.Inf(-1) }), driver.ReasonBadHeading},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := driver.Validate(tt.p, now, driver.Limits{}); got != tt.want {
				t.Fatalf("Validate = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecodePings(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		n       int
		single  bool
		err     error
		errHas  string
		missing string
	}{
		{"one ping rfc3339", `{"lat":41.1,"lng":-8.6,"ts":"2026-11-25T12:00:00Z","seq":1}`, 1, true, nil, "", ""},
		{"one ping unix ms", `{"lat":41.1,"lng":-8.6,"ts":1795608000000,"seq":1,"speed":3.5}`, 1, true, nil, "", ""},
		{"batch", `{"pings":[{"lat":41.1,"lng":-8.6,"ts":1,"seq":1},{"lat":41.2,"lng":-8.6,"ts":2,"seq":2}]}`, 2, false, nil, "", ""},
		{"missing seq", `{"lat":41.1,"lng":-8.6,"ts":1}`, 1, true, nil, "", "seq"},
		{"missing lat", `{"lng":-8.6,"ts":1,"seq":1}`, 1, true, nil, "", "lat"},
		{"string lat", `{"lat":"41.1","lng":-8.6,"ts":1,"seq":1}`, 0, true, driver.ErrInvalid, "lat", ""},
		{"NaN literal", `{"lat":NaN,"lng":-8.6,"ts":1,"seq":1}`, 0, false, driver.ErrInvalid, "byte", ""},
		{"truncated", `{"lat":41.1,"lng"`, 0, false, driver.ErrInvalid, "malformed", ""},
		{"empty", ``, 0, false, driver.ErrInvalid, "empty", ""},
		{"array body", `[1,2]`, 0, false, driver.ErrInvalid, "", ""},
		{"bad ts string", `{"lat":41.1,"lng":-8.6,"ts":"yesterday","seq":1}`, 0, true, driver.ErrInvalid, "RFC 3339", ""},
		{"bad ts type", `{"lat":41.1,"lng":-8.6,"ts":true,"seq":1}`, 0, true, driver.ErrInvalid, "ts", ""},
		{"empty batch", `{"pings":[]}`, 0, false, driver.ErrInvalid, "empty", ""},
		{"batch with bad element", `{"pings":[{"lat":1,"lng":1,"ts":1,"seq":1},{"lat":"x"}]}`, 0, false, driver.ErrInvalid, "pings[1]", ""},
		{"too many", `{"pings":[` + strings.Repeat(`{"lat":1,"lng":1,"ts":1,"seq":1},`, 600)[:len(strings.Repeat(`{"lat":1,"lng":1,"ts":1,"seq":1},`, 600))-1] + `]}`, 0, false, driver.ErrTooManyPings, "600", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, single, err := driver.DecodePings([]byte(tt.body), 500)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if len(ps) != tt.n || single != tt.single {
				t.Fatalf("got %d pings single=%v, want %d single=%v", len(ps), single, tt.n, tt.single)
			}
			if ps[0].Missing != tt.missing {
				t.Fatalf("missing = %q, want %q", ps[0].Missing, tt.missing)
			}
		})
	}
}

func TestTimestampForms(t *testing.T) {
	ps, _, err := driver.DecodePings([]byte(`{"pings":[{"lat":1,"lng":1,"ts":"2026-11-25T12:00:00.5+01:00","seq":1},{"lat":1,"lng":1,"ts":1795608000500,"seq":2}]}`), 500)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 25, 11, 0, 0, 5e8, time.UTC); !ps[0].TS.Equal(want) {
		t.Fatalf("rfc3339 ts = %v, want %v", ps[0].TS, want)
	}
	if want := time.UnixMilli(1795608000500); !ps[1].TS.Equal(want) {
		t.Fatalf("unix ms ts = %v, want %v", ps[1].TS, want)
	}
	if !math.IsNaN(ps[0].Speed) {
		t.Fatal("an absent speed must decode as NaN")
	}
}

// FuzzDecodePings checks that no body crashes decoding or validation, that
// errors wrap the package's sentinels, and that accepted pings are in range.
func FuzzDecodePings(f *testing.F) {
	seeds := []string{
		`{"lat":41.1,"lng":-8.6,"ts":"2026-11-25T12:00:00Z","seq":1}`,
		`{"pings":[{"lat":41.1,"lng":-8.6,"ts":1795608000000,"seq":1,"accuracy":5,"speed":3,"heading":90}]}`,
		`{"lat":1e400,"lng":-8.6,"ts":1,"seq":1}`,
		`{"pings":null}`, `{"pings":[null]}`, `{"ts":-1}`, `{"ts":"` + strings.Repeat("9", 50) + `"}`,
		`{"lat":41.1,"lng":-8.6,"ts":1e300,"seq":9223372036854775807}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ps, _, err := driver.DecodePings(body, 500)
		if err != nil {
			if !errors.Is(err, driver.ErrInvalid) && !errors.Is(err, driver.ErrTooManyPings) {
				t.Fatalf("unwrapped error: %v", err)
			}
			return
		}
		if len(ps) == 0 || len(ps) > 500 {
			t.Fatalf("%d pings decoded without error", len(ps))
		}
		for _, p := range ps {
			if p.Missing != "" {
				continue
			}
			if driver.Validate(p.Ping, now, driver.Limits{}) == "" {
				if !p.Pos.Valid() || p.Seq <= 0 {
					t.Fatalf("invalid ping passed validation: %+v", p)
				}
			}
			_ = fmt.Sprint(p)
		}
	})
}

// samePingList checks that DecodePingList(raw) is exactly what DecodePings
// gives for {"pings":raw}: the same pings and the same error text.
func samePingList(t *testing.T, raw []byte, maxBatch int) {
	t.Helper()
	got, gotErr := driver.DecodePingList(raw, maxBatch)
	if !json.Valid(raw) {
		if gotErr == nil || !errors.Is(gotErr, driver.ErrInvalid) && !errors.Is(gotErr, driver.ErrTooManyPings) {
			t.Fatalf("invalid JSON %q: pings %v, err %v", raw, got, gotErr)
		}
		return
	}
	body := append(append([]byte(`{"pings":`), raw...), '}')
	want, _, wantErr := driver.DecodePings(body, maxBatch)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("%q: err %v, want %v", raw, gotErr, wantErr)
	}
	if gotErr != nil && (errors.Is(gotErr, driver.ErrInvalid) != errors.Is(wantErr, driver.ErrInvalid) ||
		errors.Is(gotErr, driver.ErrTooManyPings) != errors.Is(wantErr, driver.ErrTooManyPings)) {
		t.Fatalf("%q: err %v wraps other sentinels than %v", raw, gotErr, wantErr)
	}
	if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
		t.Fatalf("%q:\n got %s\nwant %s", raw, g, w)
	}
}

var pingListSeeds = []string{
	`[{"lat":41.1,"lng":-8.6,"ts":"2026-11-25T12:00:00Z","seq":1}]`,
	` [ {"lat":41.1,"lng":-8.6,"ts":1795608000000,"seq":1,"accuracy":5,"speed":3,"heading":90} , {"lng":1,"ts":1,"seq":2} ] `,
	`[{"lat":1,"lng":1,"ts":1,"seq":1},{"lat":"x"}]`,
	`[{"lat":1,"lng":1,"ts":"yesterday","seq":1}]`,
	`[{"lat":1,"lng":1,"ts":true,"seq":1}]`,
	`[{"lat":1,"lng":1,"ts":1,"seq":1,"note":"a \"]},{\\"}]`,
	`[{"lat":1,"lng":1,"ts":1,"seq":1,"x":[{"y":[]}]}]`,
	`[null]`, `[1]`, `["s"]`, `[[]]`, `[true, false]`, `[]`, ` [ ] `, `null`, `{"lat":1}`, `"x"`, `1`,
	` "" `, ` [1] `, `[1,]`, `[,1]`, `[1 2]`, `[{}`, `[{]`, `[{"a":1}}]`, `[tru e]`, `["a"b]`, `[1]x`, `[{"lat":NaN}]`, ``, `[`,
}

func TestDecodePingListMatchesBatch(t *testing.T) {
	seeds := append([]string(nil), pingListSeeds...)
	ping := `{"lat":1,"lng":1,"ts":1,"seq":1}`
	for _, n := range []int{499, 500, 501, 600} {
		seeds = append(seeds, "["+strings.TrimSuffix(strings.Repeat(ping+",", n), ",")+"]")
	}
	for i, raw := range seeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) { samePingList(t, []byte(raw), 500) })
	}
	if _, err := driver.DecodePingList([]byte(seeds[len(seeds)-1]), 500); !errors.Is(err, driver.ErrTooManyPings) {
		t.Fatalf("600 pings: err %v, want ErrTooManyPings", err)
	}
	ps, err := driver.DecodePingList([]byte(pingListSeeds[1]), 0)
	if err != nil || len(ps) != 2 || ps[0].Heading != 90 || ps[1].Missing != "lat" || !math.IsNaN(ps[1].Speed) {
		t.Fatalf("got %+v %v", ps, err)
	}
}

// FuzzDecodePingList: for any valid JSON value, DecodePingList agrees with
// DecodePings on the same batch; invalid JSON is an error wrapping a sentinel.
func FuzzDecodePingList(f *testing.F) {
	for _, s := range pingListSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { samePingList(t, raw, 3) })
}

// BenchmarkDecodePingList: a 50-ping list as the WebSocket path holds it,
// decoded directly ("list") and the old way, wrapped into a body ("wrapped").
func BenchmarkDecodePingList(b *testing.B) {
	ps := make([]string, 50)
	for i := range ps {
		ps[i] = fmt.Sprintf(`{"lat":%v,"lng":-8.6,"ts":"2026-11-25T12:00:%02dZ","seq":%d,"accuracy":5}`, 41.1+float64(i)*1e-5, i, i+1)
	}
	raw := []byte("[" + strings.Join(ps, ",") + "]")
	b.Run("list", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := driver.DecodePingList(raw, 500); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wrapped", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			body := append(append([]byte(`{"pings":`), raw...), '}')
			if _, _, err := driver.DecodePings(body, 500); err != nil {
				b.Fatal(err)
			}
		}
	})
}
