package pod_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/blob"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/pod/podredis"
	"github.com/hextrack/hextrack/trip"
)

type env struct {
	svc   *pod.Service
	store *podredis.Store
	disk  *blob.Disk
	feed  *feedredis.Broker
}

func newEnv(t *testing.T, cfg pod.Config, wrap func(pod.Store) pod.Store) *env {
	t.Helper()
	rdb, prefix := redistest.MustOpen(t)
	b := feedredis.New(rdb, feedredis.Config{Prefix: prefix})
	t.Cleanup(func() { _ = b.Close() })
	disk, err := blob.OpenDisk(filepath.Join(t.TempDir(), "pod"))
	if err != nil {
		t.Fatal(err)
	}
	st := podredis.New(rdb, podredis.Config{Prefix: prefix, TTL: time.Hour})
	var s pod.Store = st
	if wrap != nil {
		s = wrap(st)
	}
	return &env{svc: pod.NewService(disk, s, b.Publisher, cfg, nil), store: st, disk: disk, feed: b}
}

func (e *env) files(t *testing.T) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(e.disk.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	return out
}

func pngOf(t *testing.T, w int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func upload(kind string) pod.Upload {
	return pod.Upload{TripID: "t1", StopID: "s1", Kind: kind, DriverID: "d1"}
}

func read(t *testing.T, e *env, kind string) []byte {
	t.Helper()
	_, rc, err := e.svc.Open(context.Background(), "t1", "s1", kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}

// TestServiceReplace: a re-upload replaces the record and deletes the old
// file; the stop.proof events name each upload.
func TestServiceReplace(t *testing.T) {
	e := newEnv(t, pod.Config{}, nil)
	ctx := context.Background()
	a, b := pngOf(t, 3), pngOf(t, 40)
	for _, f := range [][]byte{a, b} {
		if _, err := e.svc.Put(ctx, upload(pod.KindSignature), bytes.NewReader(f)); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, e, pod.KindSignature); !bytes.Equal(got, b) {
		t.Fatalf("read %d bytes, want the second upload's %d", len(got), len(b))
	}
	if f := e.files(t); len(f) != 1 {
		t.Fatalf("files = %v", f)
	}
	ps, err := e.svc.List(ctx, "t1", "s1")
	if err != nil || len(ps) != 1 || ps[0].Size != int64(len(b)) {
		t.Fatalf("List = %+v, %v", ps, err)
	}
	evs, _, err := e.feed.Read(ctx, trip.Topic("t1"), "", 10)
	if err != nil || len(evs) != 2 || evs[0].Type != pod.EventProof {
		t.Fatalf("events = %v, %v", evs, err)
	}
}

// TestServiceConcurrentReplace: racing re-uploads leave exactly the file
// the last record names.
func TestServiceConcurrentReplace(t *testing.T) {
	e := newEnv(t, pod.Config{}, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := e.svc.Put(ctx, upload(pod.KindPhoto), bytes.NewReader(pngOf(t, 2+i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	r, err := e.store.Get(ctx, "t1", "s1", pod.KindPhoto)
	if err != nil {
		t.Fatal(err)
	}
	f := e.files(t)
	if len(f) != 1 || filepath.ToSlash(f[0]) != filepath.ToSlash(filepath.Join(e.disk.Dir(), r.Key)) {
		t.Fatalf("files = %v, record names %s", f, r.Key)
	}
}

// TestServiceLimits: the limit is the kind's, counted on the stream
// whatever the reader's chunking; at the limit passes, one over fails and
// stores nothing.
func TestServiceLimits(t *testing.T) {
	e := newEnv(t, pod.Config{MaxPhoto: 1000, MaxSignature: 300}, nil)
	ctx := context.Background()
	base := pngOf(t, 2)
	for _, c := range []struct {
		kind string
		size int
		ok   bool
	}{{pod.KindSignature, 300, true}, {pod.KindSignature, 301, false}, {pod.KindPhoto, 1000, true}, {pod.KindPhoto, 1001, false}, {pod.KindSignature, 100000, false}} {
		body := append(append([]byte{}, base...), make([]byte, c.size-len(base))...)
		_, err := e.svc.Put(ctx, upload(c.kind), io.MultiReader(bytes.NewReader(body[:7]), bytes.NewReader(body[7:])))
		if c.ok != (err == nil) || !c.ok && !errors.Is(err, pod.ErrTooLarge) {
			t.Fatalf("%s of %d bytes: %v", c.kind, c.size, err)
		}
	}
	if f := e.files(t); len(f) != 2 {
		t.Fatalf("files = %v, want the two within their limits", f)
	}
}

// failingStore refuses every record, like Redis going away between the
// file and its record.
type failingStore struct{ pod.Store }

func (failingStore) Record(context.Context, pod.Record) (pod.Record, bool, error) {
	return pod.Record{}, false, feed.ErrUnavailable
}

// TestServiceNothingLeftBehind: a record that fails deletes the new file;
// a staged file discarded (a bad form after it) is deleted; a bad geotag
// discards; nothing is recorded.
func TestServiceNothingLeftBehind(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, pod.Config{}, func(s pod.Store) pod.Store { return failingStore{s} })
	if _, err := e.svc.Put(ctx, upload(pod.KindPhoto), bytes.NewReader(pngOf(t, 2))); !errors.Is(err, feed.ErrUnavailable) {
		t.Fatalf("Put = %v", err)
	}
	if f := e.files(t); len(f) != 0 {
		t.Fatalf("files = %v", f)
	}
	e = newEnv(t, pod.Config{}, nil)
	st, err := e.svc.Stage(ctx, upload(pod.KindPhoto), bytes.NewReader(pngOf(t, 2)))
	if err != nil || len(e.files(t)) != 1 {
		t.Fatalf("Stage = %v, files %v", err, e.files(t))
	}
	st.Discard()
	st, _ = e.svc.Stage(ctx, upload(pod.KindSignature), bytes.NewReader(pngOf(t, 2)))
	if _, err := st.Commit(ctx, &pod.Geotag{Lat: 1, Lng: 2}); !errors.Is(err, pod.ErrInvalid) {
		t.Fatalf("Commit with a geotag on a signature = %v", err)
	}
	if _, err := st.Commit(ctx, nil); err == nil {
		t.Fatal("a discarded file was committed")
	}
	if f := e.files(t); len(f) != 0 {
		t.Fatalf("files = %v", f)
	}
	for _, k := range []string{pod.KindPhoto, pod.KindSignature} {
		if ok, err := e.svc.Has(ctx, "t1", "s1", k); ok || err != nil {
			t.Fatalf("Has(%s) = %v, %v", k, ok, err)
		}
	}
	if _, err := e.svc.Put(ctx, pod.Upload{TripID: "t1", StopID: "s1", Kind: pod.KindPhoto}, bytes.NewReader(pngOf(t, 2))); !errors.Is(err, pod.ErrInvalid) {
		t.Fatalf("Put without an uploader = %v", err)
	}
}
