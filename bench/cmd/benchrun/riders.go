package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http/httputil"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/geo"
)

// fanTrip is one assigned trip of the fan-out scenario.
type fanTrip struct {
	Trip  string  `json:"trip"`
	RTok  string  `json:"rtok"`
	Drv   string  `json:"drv"`
	DTok  string  `json:"dtok"`
	Lat   float64 `json:"lat"`
	Lng   float64 `json:"lng"`
	Seq   int64   `json:"seq"`
	sends [4]struct {
		ts   int64 // ping ts, unix ms
		sent int64 // unix ns when the request was written
	}
	sendMu sync.Mutex
	sendN  int
	chats  atomic.Int64 // messages posted (201)
}

// RidersResult is what the riders process reports.
type RidersResult struct {
	Connected   int       `json:"connected"`
	ConnectErrs int       `json:"connect_errors"`
	ConnectSecs float64   `json:"connect_seconds"`
	Deliveries  int64     `json:"deliveries"`
	Unmatched   int64     `json:"unmatched_locations"`
	P50, P99    float64   `json:"-"`
	P50ms       float64   `json:"p50_ms"`
	P99ms       float64   `json:"p99_ms"`
	P999ms      float64   `json:"p999_ms"`
	Maxms       float64   `json:"max_ms"`
	Rate        float64   `json:"deliveries_per_s"`
	Timeline    []float64 `json:"p99_ms_per_second"`
	PerSecond   []int     `json:"deliveries_per_second"`
	Pings       int64     `json:"pings_sent"`
	PingErrs    int64     `json:"ping_errors"`
	PingStatus  string    `json:"ping_non_2xx,omitempty"`
	Chats       int64     `json:"messages_posted"`
	ChatErrs    int64     `json:"message_errors"`
	Durable     int64     `json:"durable_expected"`
	Lost        int64     `json:"durable_lost"`
	// LateAtRead: entries a rider did not hold yet when its trip's stream
	// was read (what the check counted as lost before it waited after the
	// read); each arrived later or is in Lost. LateSample describes a few.
	LateAtRead int64      `json:"durable_late_at_read"`
	LateSample []lateInfo `json:"durable_late_sample,omitempty"`
	SettleSecs float64    `json:"lost_check_settle_s"`
	GraceSecs  float64    `json:"lost_check_grace_s"`
	Dups       int64      `json:"durable_duplicates"`
	OutOfOrder int64      `json:"durable_out_of_order"`
	Ended      int64      `json:"streams_ended"`
	Resets     int64      `json:"resets"`
}

// lateInfo is a durable entry a rider did not hold when its trip's
// stream was read: its type, how long before that read it was appended
// (from its ID's time) and when it reached the rider after the read (-1:
// never).
type lateInfo struct {
	Trip          string `json:"trip"`
	ID            string `json:"id"`
	Type          string `json:"type"`
	AppendedMsAgo int64  `json:"appended_ms_before_read"`
	ArrivedMsLate int64  `json:"arrived_ms_after_read"`
}

// viewer is one SSE rider.
type viewer struct {
	t     *fanTrip
	ti    int
	start string // snapshot position (first id)
	ended bool

	mu  sync.Mutex // ids and at: the reader appends while the check reads
	ids []string   // durable ids after start
	at  []int64    // when each arrived, unix ms
}

func (v *viewer) got(id string) {
	v.mu.Lock()
	v.ids = append(v.ids, id)
	v.at = append(v.at, time.Now().UnixMilli())
	v.mu.Unlock()
}

// held returns the durable ids received so far, with their arrival times.
func (v *viewer) held() ([]string, []int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ids[:len(v.ids):len(v.ids)], v.at[:len(v.at):len(v.at)]
}

// runRiders holds 4 SSE riders per trip, reports "connected N", waits
// for "go" on stdin, then has each trip's driver ping over a keep-alive
// REST pool every period, posts chat messages (durable events), measures
// ping→rider latency and finally checks every rider's durable events
// against the stream. With -ref it does the same against the reference
// server's /sub and /pub (no auth, no durable events).
func runRiders(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("riders", flag.ContinueOnError)
	setup := fs.String("setup", "", "trips file (JSON lines) written by the orchestrator")
	addr := fs.String("addr", "", "server host:port (required)")
	ref := fs.Int("ref", 0, "reference mode: this many topics on the reference server")
	per := fs.Int("per", 4, "SSE riders per trip")
	pool := fs.Int("pool", 48, "keep-alive REST connections of the drivers")
	period := fs.Duration("period", 1900*time.Millisecond, "ping period per driver (1.9 s ≈ 0.53 Hz)")
	dur := fs.Duration("duration", 30*time.Second, "measurement window")
	chatEvery := fs.Duration("chat-every", 10*time.Second, "each trip's rider posts a message this often (0: never)")
	redisURL := fs.String("redis", "", "Redis to read the streams from for the lost-event check")
	settle := fs.Duration("settle", 2*time.Second, "lost-event check: wait after the last post before the streams are read")
	grace := fs.Duration("grace", 5*time.Second, "lost-event check: wait after reading the streams before the riders are compared with them (at least two feed position-check periods)")
	spread := fs.Int("spread", 16, "source addresses 127.0.0.2..")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return fmt.Errorf("-addr is required")
	}
	var trips []*fanTrip
	if *ref > 0 {
		for i := 0; i < *ref; i++ {
			trips = append(trips, &fanTrip{Trip: "t" + strconv.Itoa(i)})
		}
	} else {
		var err error
		if trips, err = readTrips(*setup); err != nil {
			return err
		}
	}
	dl := &spreadDialer{n: *spread}
	var res RidersResult
	var viewers []*viewer
	for ti, t := range trips {
		for k := 0; k < *per; k++ {
			viewers = append(viewers, &viewer{t: t, ti: ti})
		}
	}
	// Latency samples: µs, by second of receipt.
	var latMu sync.Mutex
	var samples []int32
	bySec := map[int][]int32{}
	var goAt atomic.Int64
	var deliveries, unmatched, ended, resets atomic.Int64
	onLocation := func(v *viewer, data []byte, now time.Time) {
		g := goAt.Load()
		if g == 0 {
			return // before the window: snapshots, setup pings
		}
		var e struct {
			Data struct {
				TS time.Time `json:"ts"`
			} `json:"data"`
			TS int64 `json:"ts_ms"`
		}
		var tsms int64
		if *ref > 0 {
			var r struct {
				TS int64 `json:"ts"`
			}
			if json.Unmarshal(data, &r) != nil {
				return
			}
			tsms = r.TS
		} else {
			if json.Unmarshal(data, &e) != nil {
				return
			}
			tsms = e.Data.TS.UnixMilli()
		}
		t := v.t
		var sent int64
		t.sendMu.Lock()
		for _, s := range t.sends {
			if s.ts == tsms {
				sent = s.sent
			}
		}
		t.sendMu.Unlock()
		if sent == 0 || sent < g {
			unmatched.Add(1)
			return
		}
		d := int32((now.UnixNano() - sent) / 1e3)
		sec := int((now.UnixNano() - g) / 1e9)
		deliveries.Add(1)
		latMu.Lock()
		samples = append(samples, d)
		bySec[sec] = append(bySec[sec], d)
		latMu.Unlock()
	}
	// Connect every rider, 256 at a time.
	t0 := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	var connected, connErrs atomic.Int64
	var firstErr atomic.Value
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	readers := sync.WaitGroup{}
	for _, v := range viewers {
		sem <- struct{}{}
		wg.Add(1)
		go func(v *viewer) {
			defer wg.Done()
			path := "/v1/trips/" + v.t.Trip + "/events"
			if *ref > 0 {
				path = "/sub/" + v.t.Trip
			}
			h, err := dialH(runCtx, dl, *addr)
			if err == nil {
				_, err = h.c.Write(request("GET", *addr, path, v.t.RTok, []string{"Accept", "text/event-stream"}, nil))
			}
			var br *bufio.Reader
			if err == nil {
				br, err = sseHeaders(h)
			}
			<-sem
			if err != nil {
				connErrs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				if h != nil {
					h.Close()
				}
				return
			}
			connected.Add(1)
			readers.Add(1)
			go func() {
				defer readers.Done()
				defer h.Close()
				go func() { <-runCtx.Done(); h.Close() }()
				readSSE(br, func(id, event string, data []byte) {
					switch {
					case event == "trip.location":
						onLocation(v, data, time.Now())
					case event == "reset":
						resets.Add(1)
					case id != "" && v.start == "":
						v.start = id
					case id != "":
						v.got(id)
					}
				})
				if runCtx.Err() == nil {
					v.ended = true
					ended.Add(1)
				}
			}()
		}(v)
	}
	wg.Wait()
	res.Connected, res.ConnectErrs, res.ConnectSecs = int(connected.Load()), int(connErrs.Load()), time.Since(t0).Seconds()
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "first connect error:", e)
	}
	fmt.Fprintf(stdout, "connected %d %d\n", res.Connected, res.ConnectErrs)
	// Wait for "go".
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if strings.TrimSpace(line) != "go" {
		return fmt.Errorf("riders: expected go, got %q", line)
	}
	start := time.Now()
	goAt.Store(start.UnixNano())
	stopAt := start.Add(*dur)
	var pings, pingErrs, chats, chatErrs atomic.Int64
	var badStatus atomic.Value
	var lanes sync.WaitGroup
	P := *period
	for k := 0; k < *pool; k++ {
		lanes.Add(1)
		go func(k int) {
			defer lanes.Done()
			h, err := dialH(ctx, dl, *addr)
			if err != nil {
				pingErrs.Add(1)
				return
			}
			defer h.Close()
			var mine []int
			for i := k; i < len(trips); i += *pool {
				mine = append(mine, i)
			}
			body := make([]byte, 0, 256)
			for n := 0; ; n++ {
				i := mine[n%len(mine)]
				round := n / len(mine)
				due := start.Add(time.Duration(round)*P + time.Duration(int64(P)*int64(i)/int64(len(trips))))
				if !due.Before(stopAt) {
					return
				}
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				t := trips[i]
				now := time.Now()
				tsms := now.UnixMilli()
				var path, tok string
				if *ref > 0 {
					path = "/pub/" + t.Trip
					body = fmt.Appendf(body[:0], `{"trip":%d,"ts":%d}`, i, tsms)
				} else {
					t.Seq++
					// 8 m/s due south, away from the pickup (no arrival).
					p := geo.Offset(geo.Point{Lat: t.Lat, Lng: t.Lng}, 180, 8*P.Seconds()*float64(round+1))
					path, tok = "/v1/drivers/"+t.Drv+"/locations", t.DTok
					body = fmt.Appendf(body[:0], `{"pings":[{"lat":%.7f,"lng":%.7f,"ts":%d,"seq":%d,"accuracy":5,"speed":8,"heading":180}]}`,
						p.Lat, p.Lng, tsms, t.Seq)
				}
				req := request("POST", *addr, path, tok, nil, body)
				t.sendMu.Lock()
				s := &t.sends[t.sendN%len(t.sends)]
				t.sendN++
				s.ts, s.sent = tsms, time.Now().UnixNano()
				t.sendMu.Unlock()
				st, rb, err := h.do(req, "", nil)
				if err != nil {
					pingErrs.Add(1)
					return
				}
				pings.Add(1)
				if st >= 300 {
					pingErrs.Add(1)
					badStatus.CompareAndSwap(nil, fmt.Sprintf("%d %s", st, rb))
				}
				// Chat: a durable event on the trip, from its rider.
				if *ref == 0 && *chatEvery > 0 && round%int(math.Max(1, math.Round(chatEvery.Seconds()/P.Seconds()))) == 0 {
					mb := fmt.Appendf(nil, `{"client_id":"c%d-%d","text":"bench %d"}`, i, round, round)
					st, _, err := h.do(request("POST", *addr, "/v1/trips/"+t.Trip+"/messages", t.RTok, nil, mb), "", nil)
					if err != nil {
						chatErrs.Add(1)
						return
					}
					if st == 201 {
						chats.Add(1)
						t.chats.Add(1)
					} else {
						chatErrs.Add(1)
					}
				}
			}
		}(k)
	}
	lanes.Wait()
	el := time.Since(start)
	time.Sleep(*settle) // let the last deliveries arrive
	res.Pings, res.PingErrs, res.Chats, res.ChatErrs = pings.Load(), pingErrs.Load(), chats.Load(), chatErrs.Load()
	if s := badStatus.Load(); s != nil {
		res.PingStatus = s.(string)
	}
	if *ref == 0 && *redisURL != "" {
		if err := checkLost(ctx, *redisURL, trips, viewers, *grace, &res); err != nil {
			return err
		}
		res.SettleSecs, res.GraceSecs = settle.Seconds(), grace.Seconds()
	}
	cancelRun()
	res.Ended, res.Resets = ended.Load(), resets.Load()
	res.Deliveries, res.Unmatched = deliveries.Load(), unmatched.Load()
	res.Rate = float64(res.Deliveries) / el.Seconds()
	latMu.Lock()
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	res.P50ms, res.P99ms, res.P999ms = qus(samples, 0.5), qus(samples, 0.99), qus(samples, 0.999)
	res.Maxms = qus(samples, 1)
	secs := int(math.Ceil(el.Seconds()))
	for s := 0; s < secs; s++ {
		v := bySec[s]
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		res.Timeline = append(res.Timeline, qus(v, 0.99))
		res.PerSecond = append(res.PerSecond, len(v))
	}
	latMu.Unlock()
	return json.NewEncoder(stdout).Encode(res)
}

// checkLost counts lost durable events: each rider must hold every stream
// entry after its snapshot position, in order, once. The streams are read
// first (the cut); the riders are compared with the cut grace later, so an
// entry appended just before its stream was read (the server still appends
// trip.eta events for a few seconds after the last ping: a held move is
// estimated up to the ETA period later) has had grace to arrive, instead of
// the microseconds between the read and the comparison. Entries appended
// after the cut are not counted. Entries missing at the read are counted
// in LateAtRead and sampled.
func checkLost(ctx context.Context, redisURL string, trips []*fanTrip, viewers []*viewer, grace time.Duration, res *RidersResult) error {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	byTrip := map[int][]*viewer{}
	for _, v := range viewers {
		byTrip[v.ti] = append(byTrip[v.ti], v)
	}
	type cut struct {
		xs   []redis.XMessage
		read int64 // unix ms
	}
	cuts := map[int]cut{}
	type lateKey struct {
		v  *viewer
		id string
	}
	late := map[lateKey]int{} // → index in res.LateSample, -1 unsampled
	for ti, vs := range byTrip {
		from := ""
		for _, v := range vs {
			if v.start != "" && (from == "" || idLess(v.start, from)) {
				from = v.start
			}
		}
		if from == "" {
			continue
		}
		xs, err := rdb.XRange(ctx, feed.StreamKey(prefix, "trip:"+trips[ti].Trip), "("+from, "+").Result()
		if err != nil {
			return err
		}
		now := time.Now().UnixMilli()
		cuts[ti] = cut{xs: xs, read: now}
		for _, v := range vs {
			ids, _ := v.held()
			seen := make(map[string]bool, len(ids))
			for _, id := range ids {
				seen[id] = true
			}
			for _, x := range xs {
				if !idLess(v.start, x.ID) || seen[x.ID] {
					continue
				}
				res.LateAtRead++
				k := -1
				if len(res.LateSample) < 20 {
					k = len(res.LateSample)
					typ, _ := x.Values["type"].(string)
					ms, _, _ := strings.Cut(x.ID, "-")
					at, _ := strconv.ParseInt(ms, 10, 64)
					res.LateSample = append(res.LateSample, lateInfo{Trip: v.t.Trip, ID: x.ID, Type: typ, AppendedMsAgo: now - at, ArrivedMsLate: -1})
				}
				late[lateKey{v, x.ID}] = k
			}
		}
	}
	time.Sleep(grace)
	for ti, c := range cuts {
		for _, v := range byTrip[ti] {
			ids, at := v.held()
			seen := make(map[string]int, len(ids))
			for i, id := range ids {
				if _, dup := seen[id]; dup {
					res.Dups++
				}
				seen[id] = i
				if i > 0 && !idLess(ids[i-1], id) {
					res.OutOfOrder++
				}
			}
			for _, x := range c.xs {
				if !idLess(v.start, x.ID) {
					continue
				}
				res.Durable++
				i, ok := seen[x.ID]
				if !ok {
					res.Lost++
				}
				if k, wasLate := late[lateKey{v, x.ID}]; wasLate && k >= 0 && ok {
					res.LateSample[k].ArrivedMsLate = at[i] - c.read
				}
			}
		}
	}
	return nil
}

func qus(s []int32, p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return math.Round(float64(s[max(0, min(i, len(s)-1))])) / 1000
}

func idLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if x != y {
		return x < y
	}
	p, _ := strconv.ParseUint(as, 10, 64)
	q, _ := strconv.ParseUint(bs, 10, 64)
	return p < q
}

// sseHeaders reads the response head of an SSE request and returns a
// reader of the (chunked) body.
func sseHeaders(h *hconn) (*bufio.Reader, error) {
	h.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer h.c.SetReadDeadline(time.Time{})
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
		return nil, fmt.Errorf("SSE: %s", bytes.TrimSpace(line))
	}
	chunked := false
	for {
		l, err := h.br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if len(l) <= 2 {
			break
		}
		if i := bytes.IndexByte(l, ':'); i > 0 && asciiEq(l[:i], "transfer-encoding") {
			chunked = true
		}
	}
	if !chunked {
		return h.br, nil
	}
	return bufio.NewReaderSize(httputil.NewChunkedReader(h.br), 4096), nil
}

// readSSE calls fn for each frame until the stream ends.
func readSSE(br *bufio.Reader, fn func(id, event string, data []byte)) {
	var id, event string
	var data, long []byte
	for {
		l, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, l...)
			continue
		}
		if err != nil {
			return
		}
		if long != nil {
			l, long = append(long, l...), nil
		}
		l = bytes.TrimRight(l, "\r\n")
		switch {
		case len(l) == 0:
			if event != "" || data != nil {
				fn(id, event, data)
			}
			id, event, data = "", "", nil
		case bytes.HasPrefix(l, []byte("id: ")):
			id = string(l[4:])
		case bytes.HasPrefix(l, []byte("event: ")):
			event = string(l[7:])
		case bytes.HasPrefix(l, []byte("data: ")):
			data = append(data, l[6:]...)
		}
	}
}

// readTrips reads the trips file written by setupTrips.
func readTrips(path string) ([]*fanTrip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var trips []*fanTrip
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		t := &fanTrip{}
		if err := json.Unmarshal(l, t); err != nil {
			return nil, err
		}
		trips = append(trips, t)
	}
	return trips, nil
}
