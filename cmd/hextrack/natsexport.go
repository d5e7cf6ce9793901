package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/natsexport"
)

// natsFlags registers --nats-url and --nats-stream (the JetStream export).
func natsFlags(fs *flag.FlagSet, c *Config) error {
	// A NATS URL may carry a user and password: a secret, so *_FILE works too.
	u, err := readSecret("HEXTRACK_NATS_URL")
	if err != nil {
		return err
	}
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS server of the JetStream export of every durable event (nats://host:4222); needs the archive; empty: no export (HEXTRACK_NATS_URL or HEXTRACK_NATS_URL_FILE)")
	c.NATSURL = u // the env's value, not shown by --help; the flag overrides it
	fs.StringVar(&c.NATSStream, "nats-stream", envOr("HEXTRACK_NATS_STREAM", "HEXTRACK"), "JetStream stream of the export, created or updated at start with the subjects <prefix>.> (HEXTRACK_NATS_STREAM)")
	fs.StringVar(&c.NATSPrefix, "nats-subject-prefix", envOr("HEXTRACK_NATS_SUBJECT_PREFIX", "hextrack"), "first token of the export's subjects: <prefix>.<event type>.<trip id> (HEXTRACK_NATS_SUBJECT_PREFIX)")
	return nil
}

// errNATSNoArchive: the export reads the archive; without one it has
// nothing to read.
var errNATSNoArchive = errors.New("--nats-url: the NATS export reads the archive: set --database-url or --data-dir")

// natsExport is the node's running exporter.
type natsExport struct {
	x    *natsexport.Exporter
	done chan struct{} // closed when Run ends
}

// startNATSExport starts the node's exporter (every node runs one; the
// archive's lease picks the one that exports) until ctx ends. The NATS
// server is dialled in the background: one that does not answer does not
// stop the node, the export waits.
func startNATSExport(ctx context.Context, c *Config, arch *nodeArchive, reg prometheus.Registerer, log *slog.Logger) (*natsExport, error) {
	if arch == nil {
		return nil, errNATSNoArchive
	}
	host, _ := os.Hostname()
	var r [3]byte
	_, _ = rand.Read(r[:])
	x, err := natsexport.Open(c.NATSURL, arch, arch, natsexport.Config{Stream: c.NATSStream,
		Prefix: c.NATSPrefix, NodeID: fmt.Sprintf("%s-%x", host, r), Registerer: reg, Logger: log})
	if err != nil {
		return nil, err
	}
	log.Info("nats export: on", "nats", redactURL(c.NATSURL), "stream", c.NATSStream, "subjects", c.NATSPrefix+".>")
	e := &natsExport{x: x, done: make(chan struct{})}
	go func() { defer close(e.done); _ = x.Run(ctx) }()
	return e, nil
}

// stop waits for the exporter to end (its lease handed back: cancel Run's
// context first) and closes its connection; nil: no export, nothing to do.
func (e *natsExport) stop() {
	if e == nil {
		return
	}
	<-e.done
	e.x.Close()
}

var (
	_ natsexport.Outbox = (*nodeArchive)(nil)
	_ natsexport.Leases = (*nodeArchive)(nil)
)

// PendingExport reads the open archive (errArchiveNotOpen until it is: the
// exporter backs off and retries).
func (a *nodeArchive) PendingExport(ctx context.Context, limit int) ([]archive.Event, error) {
	s := a.Store()
	if s == nil {
		return nil, errArchiveNotOpen
	}
	return s.PendingExport(ctx, limit)
}

// MarkExported writes to the open archive (errArchiveNotOpen until it is).
func (a *nodeArchive) MarkExported(ctx context.Context, evs []archive.Event) error {
	s := a.Store()
	if s == nil {
		return errArchiveNotOpen
	}
	return s.MarkExported(ctx, evs)
}

// LeaseExport takes the export's lease in the open archive.
func (a *nodeArchive) LeaseExport(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	s := a.Store()
	if s == nil {
		return false, errArchiveNotOpen
	}
	return s.LeaseExport(ctx, name, holder, ttl)
}

// ReleaseExport gives the export's lease back.
func (a *nodeArchive) ReleaseExport(ctx context.Context, name, holder string) error {
	s := a.Store()
	if s == nil {
		return errArchiveNotOpen
	}
	return s.ReleaseExport(ctx, name, holder)
}
