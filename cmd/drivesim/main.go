package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "drivesim:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: drivesim <command> [flags]

commands:
  run     simulated drivers and riders on a map (synthetic city or OSM PBF)
  replay  recorded GPS trips (Porto taxi CSV) replayed as drivers on trips
  load    load generator: K drivers at H Hz, R SSE subscribers, latency report
  sink    webhook receiver: verifies signatures, per-trip order and gaps; fails on demand

Run "drivesim <command> -h" for its flags.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, usage)
		if len(args) == 0 {
			return errors.New("no command")
		}
		return nil
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return runSim(ctx, args, stdout, stderr)
	case "replay":
		return runReplay(ctx, args, stdout, stderr)
	case "load":
		return runLoad(ctx, args, stdout, stderr)
	case "sink": // webhook receiver (sink.go, package sim/sink)
		return runSink(ctx, args, stdout, stderr)
	case "gateway": // simulated payment gateway (gateway.go)
		return runGateway(ctx, args, stdout)
	}
	return fmt.Errorf("unknown command %q (run, replay, load, sink)", cmd)
}
