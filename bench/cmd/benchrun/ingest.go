package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hextrack/hextrack/geo"

	"github.com/hextrack/hextrack/api/tokens"
)

// IngestResult is what one ingest process reports.
type IngestResult struct {
	Drivers   int     `json:"drivers"`
	Connected int     `json:"connected"`
	Batches   int64   `json:"batches"`
	Accepted  int64   `json:"accepted"`
	Dups      int64   `json:"duplicates"`
	Rejected  int64   `json:"rejected"`
	Errors    int64   `json:"errors"`
	ErrSample string  `json:"error_sample,omitempty"`
	Seconds   float64 `json:"seconds"`
}

// ingestDriver is one simulated driver: it moves at 10 m/s on a fixed
// heading from a city-dense start and reports B fixes per batch.
type ingestDriver struct {
	id, token string
	start     geo.Point
	heading   float64
	seq       int64
	t0        time.Time
}

// batch appends a batch of n pings (JSON array) to buf.
func (d *ingestDriver) batch(buf []byte, n int, rng *rand.Rand) []byte {
	now := time.Now()
	nowMS := now.UnixMilli()
	p := geo.Offset(d.start, d.heading, 10*now.Sub(d.t0).Seconds())
	buf = append(buf, '[')
	for k := 0; k < n; k++ {
		d.seq++
		if k > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"lat":`...)
		buf = strconv.AppendFloat(buf, p.Lat+(rng.Float64()-0.5)*2e-5, 'f', 7, 64)
		buf = append(buf, `,"lng":`...)
		buf = strconv.AppendFloat(buf, p.Lng+(rng.Float64()-0.5)*2e-5, 'f', 7, 64)
		buf = append(buf, `,"ts":`...)
		buf = strconv.AppendInt(buf, nowMS-int64(n-1-k), 10)
		buf = append(buf, `,"seq":`...)
		buf = strconv.AppendInt(buf, d.seq, 10)
		buf = append(buf, `,"accuracy":5,"speed":10,"heading":`...)
		buf = strconv.AppendFloat(buf, d.heading, 'f', 0, 64)
		buf = append(buf, '}')
	}
	return append(buf, ']')
}

type ackReply struct {
	Type       string            `json:"type"`
	Ref        string            `json:"ref"`
	Accepted   int64             `json:"accepted"`
	Duplicates int64             `json:"duplicates"`
	Rejected   []json.RawMessage `json:"rejected"`
	Code       string            `json:"code"`
	Message    string            `json:"message"`
}

// runIngest connects its drivers (WebSocket each, or a pool of REST
// keep-alive connections), reports "ready", waits for "go" on stdin and
// then sends batches in a closed loop (the next batch of a driver after
// the previous one was acknowledged) for the duration.
func runIngest(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	transport := fs.String("transport", "ws", "ws or rest")
	addr := fs.String("addr", "", "server host:port (required)")
	n := fs.Int("drivers", 5000, "drivers in this process")
	first := fs.Int("first", 0, "index of the first driver")
	name := fs.String("name", "w", "driver id prefix")
	bsz := fs.Int("batch", 50, "pings per batch")
	dur := fs.Duration("duration", 60*time.Second, "measurement window")
	lanes := fs.Int("lanes", 100, "REST keep-alive connections")
	spread := fs.Int("spread", 16, "source addresses 127.0.0.2..")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return fmt.Errorf("-addr is required")
	}
	auth := tokens.NewAuth([]byte(os.Getenv("BENCH_SECRET")))
	pts := cityDense(*first+*n, 21)
	rng := rand.New(rand.NewPCG(uint64(*first), 5))
	drivers := make([]*ingestDriver, *n)
	t0 := time.Now()
	for i := range drivers {
		id := *name + strconv.Itoa(*first+i)
		tok, err := auth.Mint(tokens.Request{Role: "driver", Sub: id, TTL: 3 * time.Hour})
		if err != nil {
			return err
		}
		drivers[i] = &ingestDriver{id: id, token: tok, start: pts[*first+i], heading: float64(rng.IntN(360)), t0: t0}
	}
	dl := &spreadDialer{n: *spread}
	var res IngestResult
	res.Drivers = *n
	var batches, accepted, dups, rejected, errs atomic.Int64
	var errSample atomic.Value
	fail := func(err error) {
		errs.Add(1)
		errSample.CompareAndSwap(nil, err.Error())
	}
	goCh := make(chan struct{})
	var stopAt atomic.Int64
	running := func() bool { return time.Now().UnixNano() < stopAt.Load() }
	var wg sync.WaitGroup
	var connected atomic.Int64
	sem := make(chan struct{}, 200)
	switch *transport {
	case "ws":
		wd := &websocket.Dialer{NetDialContext: func(ctx context.Context, _, a string) (netConn, error) { return dl.dial(ctx, a) },
			HandshakeTimeout: 30 * time.Second, ReadBufferSize: 2048, WriteBufferSize: 8192}
		for _, d := range drivers {
			sem <- struct{}{}
			wg.Add(1)
			go func(d *ingestDriver) {
				defer wg.Done()
				h := http.Header{"Authorization": {"Bearer " + d.token}}
				c, _, err := wd.DialContext(ctx, "ws://"+*addr+"/v1/drivers/"+d.id+"/ws", h)
				if err == nil {
					err = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello"}`))
				}
				var r ackReply
				for err == nil && r.Type != "ready" {
					err = c.ReadJSON(&r)
				}
				<-sem
				if err != nil {
					fail(fmt.Errorf("ws connect: %w", err))
					if c != nil {
						c.Close()
					}
					return
				}
				connected.Add(1)
				defer c.Close()
				<-goCh
				rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
				buf := make([]byte, 0, 128**bsz)
				for k := 0; running(); k++ {
					ref := strconv.Itoa(k)
					buf = append(buf[:0], `{"type":"locations","ref":"`...)
					buf = append(buf, ref...)
					buf = append(buf, `","pings":`...)
					buf = d.batch(buf, *bsz, rng)
					buf = append(buf, '}')
					if err := c.WriteMessage(websocket.TextMessage, buf); err != nil {
						fail(err)
						return
					}
					for {
						var r ackReply
						if err := c.ReadJSON(&r); err != nil {
							fail(err)
							return
						}
						if r.Ref != ref {
							continue // a command or another reply
						}
						if r.Type != "ack" {
							fail(fmt.Errorf("ws: %s %s %s", r.Type, r.Code, r.Message))
							break
						}
						if running() {
							batches.Add(1)
							accepted.Add(r.Accepted)
							dups.Add(r.Duplicates)
							rejected.Add(int64(len(r.Rejected)))
						}
						break
					}
				}
			}(d)
		}
	case "rest":
		for l := 0; l < *lanes; l++ {
			wg.Add(1)
			go func(l int) {
				defer wg.Done()
				h, err := dialH(ctx, dl, *addr)
				if err != nil {
					fail(err)
					return
				}
				connected.Add(1)
				defer h.Close()
				var mine []*ingestDriver
				for i := l; i < len(drivers); i += *lanes {
					mine = append(mine, drivers[i])
				}
				<-goCh
				rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
				body := make([]byte, 0, 128**bsz)
				for k := 0; running(); k++ {
					d := mine[k%len(mine)]
					body = append(body[:0], `{"pings":`...)
					body = d.batch(body, *bsz, rng)
					body = append(body, '}')
					st, rb, err := h.do(request("POST", *addr, "/v1/drivers/"+d.id+"/locations", d.token, nil, body), "", nil)
					if err != nil {
						fail(err)
						return
					}
					if st != 200 {
						fail(fmt.Errorf("rest: %d %s", st, rb))
						continue
					}
					var r ackReply
					if err := json.Unmarshal(rb, &r); err != nil {
						fail(err)
						continue
					}
					if running() {
						batches.Add(1)
						accepted.Add(r.Accepted)
						dups.Add(r.Duplicates)
						rejected.Add(int64(len(r.Rejected)))
					}
				}
			}(l)
		}
	default:
		return fmt.Errorf("transport must be ws or rest")
	}
	// All connected (or failed) before "ready".
	for i := 0; i < 6000; i++ {
		if int(connected.Load()+errs.Load()) >= map[bool]int{true: *n, false: *lanes}[*transport == "ws"] {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.Connected = int(connected.Load())
	fmt.Fprintf(stdout, "ready %d\n", res.Connected)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if line != "go\n" {
		return fmt.Errorf("ingest: expected go, got %q", line)
	}
	start := time.Now()
	stopAt.Store(start.Add(*dur).UnixNano())
	close(goCh)
	wg.Wait()
	res.Seconds = dur.Seconds()
	res.Batches, res.Accepted, res.Dups, res.Rejected, res.Errors = batches.Load(), accepted.Load(), dups.Load(), rejected.Load(), errs.Load()
	if s := errSample.Load(); s != nil {
		res.ErrSample = s.(string)
	}
	return json.NewEncoder(stdout).Encode(res)
}
