package driverredis

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
)

// TestIngestCallArgs pins ingestCall's encoding: the text go-redis wrote for
// the former []any arguments (ingestScript's stored fields depend on it),
// and the packed numbers, which must be what the script's tonumber gave for
// that text.
func TestIngestCallArgs(t *testing.T) {
	s := NewService(nil, nil, driver.Config{Prefix: "t:", Limits: driver.Limits{MaxJumpSpeed: 70.5}, PingRate: 2.5})
	now := time.UnixMilli(1795608000123)
	pings := []driver.Ping{
		{Pos: geo.Point{Lat: 41.15791234567, Lng: -8.62914}, TS: now.Add(-time.Second), Seq: 1 << 40,
			Accuracy: 5, Speed: 10.456, Heading: 359.999},
		{Pos: geo.Point{Lat: -0.0000001, Lng: 179.99999999}, TS: now, Seq: 7,
			Accuracy: math.NaN(), Speed: math.NaN(), Heading: math.NaN()},
		{Pos: geo.Point{Lat: -89.99999995, Lng: -0.00000004}, TS: now, Seq: 1<<53 + 1,
			Accuracy: 0, Speed: 99.995, Heading: 0.004},
	}
	c := s.newIngestCall("d-1", now, 3, len(pings))
	for _, p := range pings {
		c.ping(p, geo.CellOf(p.Pos, geo.ResIndex))
	}
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	opt := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return f(v, 2)
	}
	want := []string{ingestScript.Hash(), "4", stateKey("t:", "d-1"), seqsKey("t:", "d-1"), "t:drv:{d-1}:rl", "t:drv:{d-1}:susp",
		"70.5", "4096", strconv.Itoa(7 * 24 * 3600), driver.StatusAvailable, "1795608000123", "2.5", "1000", "3"}
	// The numbers as strtod (tonumber) reads the text, via ParseFloat.
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var seqs, rest []float64
	var text []string
	for _, p := range pings {
		seq, ts := strconv.FormatInt(p.Seq, 10), strconv.FormatInt(p.TS.UnixMilli(), 10)
		seqs = append(seqs, num(seq))
		rest = append(rest, num(ts), num(f(p.Pos.Lat, 7)), num(f(p.Pos.Lng, 7)))
		text = append(text, seq, f(p.Pos.Lat, 7)+"|"+f(p.Pos.Lng, 7)+"|"+ts+"|"+
			opt(p.Accuracy)+"|"+opt(p.Speed)+"|"+opt(p.Heading)+"|"+geo.CellOf(p.Pos, geo.ResIndex).String())
	}
	var nums []byte
	for _, v := range append(seqs, rest...) {
		nums = binary.LittleEndian.AppendUint64(nums, math.Float64bits(v))
	}
	want = append(append(want, string(nums)), text...)
	if len(c.args) != 1+len(want) || c.args[0] != "evalsha" {
		t.Fatalf("%d args starting %v, want evalsha and %d", len(c.args), c.args[0], len(want))
	}
	for i, w := range want {
		a := c.args[1+i].(*ingestArg)
		b, _ := a.MarshalBinary()
		if string(b) != w || a.String() != w {
			t.Errorf("arg %d = %q (String %q), want %q", 1+i, b, a.String(), w)
		}
	}
}

// TestFixed7 checks fixed7 against ParseFloat (strtod's answer) on numbers
// written with 7 decimals.
func TestFixed7(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		v := (r.Float64()*2 - 1) * 180
		if i%4 == 0 {
			v = math.Round(v*1e7)/1e7 + float64(r.IntN(3)-1)*5e-8 // near a rounding tie
		}
		s := strconv.FormatFloat(v, 'f', 7, 64)
		want, _ := strconv.ParseFloat(s, 64)
		if got := fixed7([]byte(s)); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("fixed7(%s) = %v, want %v", s, got, want)
		}
	}
}

// TestIngestCallNoScript: a Redis that does not know the script's hash gets
// it by EVAL, as redis.Script.Run does (without flushing the shared Redis's
// scripts: the call asks for an unknown hash).
func TestIngestCallNoScript(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	s := NewService(rdb, nil, driver.Config{Prefix: prefix})
	now := time.Now()
	c := s.newIngestCall("d1", now, 1, 1)
	pos := geo.Point{Lat: 41.15, Lng: -8.61}
	c.ping(driver.Ping{Pos: pos, TS: now, Seq: 1, Accuracy: math.NaN(), Speed: math.NaN(), Heading: math.NaN()}, geo.CellOf(pos, geo.ResIndex))
	c.args[1] = "0000000000000000000000000000000000000000"
	v, err := s.pipes.run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := parseIngestReply(v)
	if err != nil || !rep.applied || rep.maxSeq != 1 || len(rep.codes) != 1 || rep.codes[0] != codeApplied {
		t.Fatalf("reply %+v, %v; want the ping applied", rep, err)
	}
}

// TestIngestInflightBound: ingest scripts go through the pipe (at most
// MaxInflight in flight; its queueing and giving up are tested in
// internal/autopipe); a call with a free pipeline is sent and gives the
// pipeline back.
func TestIngestInflightBound(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	s := NewService(rdb, nil, driver.Config{Prefix: prefix, MaxInflight: 1})
	if _, err := s.pipes.run(context.Background(), s.newIngestCall("d1", time.Now(), 1, 0)); err != nil {
		t.Fatalf("err %v with a free pipeline", err)
	}
	if leaders, queued := s.pipes.scripts.Stats(); leaders != 0 || queued != 0 {
		t.Fatalf("after the call: %d pipelines in flight, %d queued", leaders, queued)
	}
}

// TestDiskCacheShared: drivers sharing one disk slot (a table of one)
// overwrite each other's disk, and every ping still gets its own cell: the
// stored cell is H3's for the newest ping of each batch.
func TestDiskCacheShared(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	s := NewService(rdb, idx, driver.Config{Prefix: prefix, PingRate: -1})
	s.disks.slots = s.disks.slots[:1]
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	homes := []geo.Point{{Lat: 41.15, Lng: -8.61}, {Lat: 41.1502, Lng: -8.6101}, {Lat: -33.9, Lng: 151.2}}
	now := time.Now()
	for b := 0; b < 30; b++ {
		for d, home := range homes {
			ps := make([]driver.DecodedPing, 6)
			for i := range ps {
				pos := geo.Offset(home, r.Float64()*360, r.Float64()*300) // 600 m in 10 s at most: plausible
				ts := now.Add(time.Duration(b*10+i-400) * 10 * time.Second)
				ps[i] = driver.DecodedPing{Ping: driver.Ping{Pos: pos, TS: ts, Seq: int64(b*10 + i + 1),
					Accuracy: math.NaN(), Speed: math.NaN(), Heading: math.NaN()}}
			}
			id := "d" + strconv.Itoa(d)
			if _, err := s.Ingest(ctx, id, ps); err != nil {
				t.Fatal(err)
			}
			st, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if want := geo.CellOf(ps[len(ps)-1].Pos, geo.ResIndex).String(); st.Cell != want {
				t.Fatalf("batch %d driver %d: cell %s, want %s", b, d, st.Cell, want)
			}
		}
	}
}
