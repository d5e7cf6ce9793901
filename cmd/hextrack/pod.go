package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
	podapi "github.com/hextrack/hextrack/api/pod"
	"github.com/hextrack/hextrack/blob"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/pod/podredis"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

var (
	_ podapi.Proofs   = (*pod.Service)(nil)
	_ podapi.Trips    = api.TripViews(nil)
	_ api.OwnBodies   = (*podapi.Routes)(nil)
	_ pod.Store       = (*podredis.Store)(nil)
	_ pod.Publisher   = (*feedredis.Publisher)(nil)
	_ blob.Store      = (*blob.Disk)(nil)
	_ trip.ProofFiles = (*pod.Service)(nil) // the stop lifecycle asks it (Main: SetProofFiles)
	_ podapi.Stops    = (*tripredis.Service)(nil)
)

// podFlags registers the proof-of-delivery flags (serve).
func podFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.PodDir, "pod-dir", os.Getenv("HEXTRACK_POD_DIR"),
		"directory of proof-of-delivery photos and signatures; empty: pod in --data-dir (HEXTRACK_POD_DIR)")
	fs.Int64Var(&c.PodMaxPhoto, "pod-max-photo", int64(envInt("HEXTRACK_POD_MAX_PHOTO", pod.DefaultMaxPhoto)),
		"largest proof-of-delivery photo, bytes (HEXTRACK_POD_MAX_PHOTO)")
	fs.Int64Var(&c.PodMaxSignature, "pod-max-signature", int64(envInt("HEXTRACK_POD_MAX_SIGNATURE", pod.DefaultMaxSignature)),
		"largest proof-of-delivery signature, bytes (HEXTRACK_POD_MAX_SIGNATURE)")
}

// podDir is where proof files are kept: --pod-dir, else pod in the data
// dir ("" without either: no proofs on this node).
func (c *Config) podDir() string {
	if c.PodDir != "" || c.DataDir == "" {
		return c.PodDir
	}
	return filepath.Join(c.DataDir, "pod")
}

// openProofs opens proof of delivery: files on disk in c.podDir(), records
// in Redis living as long as trips' keys (tripTTL), stop.proof events on
// the trips' feeds. Without a directory it returns nil (the routes answer
// 503). A --pod-dir that cannot be made fails the start; the default one
// in the data directory only turns proofs off, logged, as the data
// directory's other optional contents do.
func openProofs(c *Config, rdb redis.UniversalClient, pub pod.Publisher, tripTTL time.Duration, log *slog.Logger) (*pod.Service, error) {
	if c.PodMaxPhoto < 0 || c.PodMaxSignature < 0 {
		return nil, errors.New("--pod-max-photo and --pod-max-signature must not be negative")
	}
	dir := c.podDir()
	if dir == "" {
		return nil, nil
	}
	disk, err := blob.OpenDisk(dir)
	if err != nil {
		if c.PodDir != "" {
			return nil, fmt.Errorf("--pod-dir: %w", err)
		}
		log.Warn("proof of delivery: off, its directory cannot be made (set --pod-dir)", "dir", dir, "err", err)
		return nil, nil
	}
	store := podredis.New(rdb, podredis.Config{Prefix: c.Prefix, TTL: tripTTL})
	cfg := pod.Config{MaxPhoto: c.PodMaxPhoto, MaxSignature: c.PodMaxSignature}
	return pod.NewService(disk, store, pub, cfg, log), nil
}

// proofRoutes are the proof-of-delivery routes over the node's proofs,
// trip views (archived trips included) and the trip service's DropStop.
// (The trip service asks the proofs when a drop is completed: Main gives
// them to it when it opens them.)
func proofRoutes(m *Main, views api.TripViews) api.Routes {
	if m.Proofs == nil {
		return podapi.New(nil, nil, views, pod.Config{})
	}
	return podapi.New(m.Proofs, m.Trips, views, m.Proofs.Config())
}
