package main

// drivesim sink receives hextrack's webhooks for tests and demos: it
// verifies their signatures, each trip's order and (with --server) gaps
// against the trip's history, misbehaves when told to, and prints a
// report on SIGINT/SIGTERM or after --duration. The logic is package
// sim/sink's; this file reads flags, listens and prints.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/sim/sink"
)

const sinkUsage = `usage: drivesim sink --secret whsec_… [flags]

Sink is a webhook receiver: point a hextrack webhook endpoint at
http://<--addr>/ and it verifies each delivery's Standard Webhooks
signature, checks that each trip's events arrive in event id order (a
redelivery is a duplicate, not a reorder) and, with --server and --token,
compares what was delivered with each trip's history at the end (gaps). It
can fail a share of requests (--fail), stall some (--stall, --stall-share)
or answer 500 to everything for a while (--fail-for). The report (received,
unique, duplicates, out-of-order, gaps, bad signatures) is printed on
SIGINT/SIGTERM or after --duration; stop it once deliveries have drained,
as an event not delivered by then is a gap.

Flags:
`

func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg                 sink.Config
		addr, server, token string
		types, jsonOut      string
		duration            time.Duration
	)
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&addr, "addr", "127.0.0.1:9090", "listen address")
	fs.StringVar(&cfg.Secret, "secret", os.Getenv("HEXTRACK_SINK_SECRET"), "the endpoint's signing secret, whsec_<base64> (HEXTRACK_SINK_SECRET)")
	fs.Float64Var(&cfg.Fail, "fail", 0, "share of requests answered 500 (0..1)")
	fs.DurationVar(&cfg.Stall, "stall", 0, "hold a share (--stall-share) of requests this long before answering")
	fs.Float64Var(&cfg.StallShare, "stall-share", 0.1, "share of requests stalled when --stall is set")
	fs.DurationVar(&cfg.FailFor, "fail-for", 0, "answer 500 to every request for this long from the first one, then recover")
	fs.StringVar(&types, "types", "", "comma-separated event types compared with the history: exact, prefix.* or * (the endpoint's filter; empty: all)")
	fs.StringVar(&server, "server", "", "hextrack base URL: compare deliveries with each trip's history (GET /v1/trips/{id}/events)")
	fs.StringVar(&token, "token", os.Getenv("HEXTRACK_SINK_TOKEN"), "ops token or API key with trips:read, for --server (HEXTRACK_SINK_TOKEN)")
	fs.DurationVar(&duration, "duration", 0, "stop and report after this long (0: on SIGINT/SIGTERM)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the failed and stalled requests (0: random)")
	fs.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file")
	fs.Usage = func() { fmt.Fprint(stderr, sinkUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if types != "" {
		cfg.Types = strings.Split(types, ",")
	}
	if server != "" {
		if token == "" {
			return errors.New("sink: --server needs --token (an ops token or an API key with trips:read)")
		}
		cfg.History = sink.ServerHistory{C: client.New(server, token, nil)}
	}
	k, err := sink.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sink: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: k, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stderr, "sink listening on http://%s/\n", ln.Addr())
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // stalled requests: not delivered
	}
	cancel()
	hctx, cancel := context.WithTimeout(context.Background(), time.Minute) // ctx is done: the history has its own
	defer cancel()
	r := k.Report(hctx)
	r.Write(stdout)
	if jsonOut != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("sink: %w", err)
		}
	}
	return nil
}
