package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/trip"
)

// TestPodSettings: the proof directory defaults to pod in the data
// directory, --pod-dir and its env override it, the limits have their
// defaults and flags.
func TestPodSettings(t *testing.T) {
	t.Setenv("HEXTRACK_POD_DIR", "")
	t.Setenv("HEXTRACK_POD_MAX_PHOTO", "")
	t.Setenv("HEXTRACK_POD_MAX_SIGNATURE", "")
	c, err := parseServe([]string{"--data-dir", "/d"})
	if err != nil || c.podDir() != filepath.Join("/d", "pod") || c.PodMaxPhoto != pod.DefaultMaxPhoto || c.PodMaxSignature != pod.DefaultMaxSignature {
		t.Fatalf("defaults: dir %q, photo %d, signature %d, %v", c.podDir(), c.PodMaxPhoto, c.PodMaxSignature, err)
	}
	t.Setenv("HEXTRACK_POD_DIR", "/p")
	t.Setenv("HEXTRACK_POD_MAX_PHOTO", "1000")
	c, err = parseServe([]string{"--pod-max-signature", "2000"})
	if err != nil || c.podDir() != "/p" || c.PodMaxPhoto != 1000 || c.PodMaxSignature != 2000 {
		t.Fatalf("env and flags: dir %q, photo %d, signature %d, %v", c.podDir(), c.PodMaxPhoto, c.PodMaxSignature, err)
	}
	if (&Config{}).podDir() != "" {
		t.Fatal("no data dir and no --pod-dir: want no proofs")
	}
}

// TestProofRoutesServed: a node with a proof directory serves a trip's
// proofs to its rider and ops, not to another rider, with the file's
// bytes and type; a node without one answers 503.
func TestProofRoutesServed(t *testing.T) {
	url := realRedis(t)
	dir := filepath.Join(t.TempDir(), "proofs")
	m := NewMain(Config{Addr: "127.0.0.1:0", RedisURL: url, Dev: true, LogLevel: "warn", Prefix: redistest.Prefix(t), PodDir: dir}, io.Discard)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Close()
		rdb, _ := openRedis(url)
		redistest.Clean(rdb, m.Config.Prefix)
		_ = rdb.Close()
	})
	if st, err := os.Stat(dir); err != nil || !st.IsDir() || m.Proofs == nil {
		t.Fatalf("proof dir: %v, service %v", err, m.Proofs)
	}
	ctx := context.Background()
	base := "http://" + m.Addr()
	anon := client.New(base, "", nil)
	rtok, _ := anon.DevToken(ctx, "rider", "r_pod", time.Hour)
	other, _ := anon.DevToken(ctx, "rider", "r_other", time.Hour)
	ops, _ := anon.DevToken(ctx, "ops", "ops1", time.Hour)
	snap, err := anon.WithToken(rtok).CreateTrip(ctx, client.CreateTripRequest{Kind: "delivery",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	var img bytes.Buffer
	_ = png.Encode(&img, image.NewGray(image.Rect(0, 0, 8, 8)))
	// Uploads wait for the stop lifecycle's DropStop: recorded here
	// through the node's service.
	if _, err := m.Proofs.Put(ctx, pod.Upload{TripID: id, StopID: "dropoff", Kind: pod.KindSignature, DriverID: "d1"}, bytes.NewReader(img.Bytes())); err != nil {
		t.Fatal(err)
	}
	get := func(tok, path string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/trips/"+id+"/stops/dropoff/proof"+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	for _, tok := range []string{rtok, ops} {
		if st, h, b := get(tok, "/signature"); st != http.StatusOK || !bytes.Equal(b, img.Bytes()) || h.Get("Content-Type") != "image/png" {
			t.Fatalf("file = %d %s, %d bytes", st, h.Get("Content-Type"), len(b))
		}
		if st, _, b := get(tok, ""); st != http.StatusOK || !bytes.Contains(b, []byte(`"kind":"signature"`)) {
			t.Fatalf("list = %d %s", st, b)
		}
	}
	if st, _, _ := get(other, "/signature"); st != http.StatusForbidden {
		t.Fatalf("another rider = %d", st)
	}
	if st, _, _ := get(rtok, "/photo"); st != http.StatusNotFound {
		t.Fatalf("no photo = %d", st)
	}
	if st, _, _ := get(rtok, "/video"); st != http.StatusBadRequest {
		t.Fatalf("bad kind = %d", st)
	}

	bare := MustRunMain(t, "") // no data dir: no proofs
	btok, _ := client.New("http://"+bare.Addr(), "", nil).DevToken(ctx, "rider", "r1", time.Hour)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+bare.Addr()+"/v1/trips/"+id+"/stops/dropoff/proof", nil)
	req.Header.Set("Authorization", "Bearer "+btok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("node without proofs = %d", resp.StatusCode)
	}
}

// TestProofArchived: with the default data directory the node keeps
// proofs in <data-dir>/pod, and an upload's stop.proof event reaches the
// archive, so its metadata outlives the trip's Redis keys.
func TestProofArchived(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	m, _ := runMainWith(t, Config{DataDir: dir})
	ctx := context.Background()
	anon := client.New("http://"+m.Addr(), "", nil)
	rtok, _ := anon.DevToken(ctx, "rider", "r_arch", time.Hour)
	snap, err := anon.WithToken(rtok).CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	var img bytes.Buffer
	_ = png.Encode(&img, image.NewGray(image.Rect(0, 0, 4, 4)))
	p, err := m.Proofs.Put(ctx, pod.Upload{TripID: id, StopID: "dropoff", Kind: pod.KindPhoto, DriverID: "d1",
		Geotag: &pod.Geotag{Lat: 41.16, Lng: -8.62}}, bytes.NewReader(img.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "pod")); err != nil || len(ents) != 1 {
		t.Fatalf("<data-dir>/pod: %v, %d entries", err, len(ents))
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if s := m.Archive(); s != nil {
			evs, _ := s.Events(ctx, archive.EventQuery{Topic: trip.Topic(id), Limit: archive.MaxEventLimit})
			for _, e := range evs {
				if e.Type == pod.EventProof && bytes.Contains(e.Data, []byte(p.SHA256)) && bytes.Contains(e.Data, []byte(`"lat":41.16`)) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("after 15s the archive holds no stop.proof event")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
