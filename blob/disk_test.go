package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hextrack/hextrack/blob"
)

func mustOpen(t *testing.T) (*blob.Disk, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := blob.OpenDisk(filepath.Join(dir, "pod"))
	if err != nil {
		t.Fatal(err)
	}
	return d, dir
}

// files lists the regular files under dir (temporary ones included).
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func get(t *testing.T, d *blob.Disk, key string) (string, blob.Info) {
	t.Helper()
	rc, info, err := d.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), info
}

func TestValidKey(t *testing.T) {
	for _, k := range []string{"a", "t1/s1/photo-0a", "A.b_c-d/e", strings.Repeat("a", 128)} {
		if !blob.ValidKey(k) {
			t.Errorf("ValidKey(%q) = false", k)
		}
	}
	for _, k := range []string{"", "..", ".", "../x", "a/../b", "a/./b", "/abs", "a//b", "a/", `a\b`, "..\\x",
		".hidden", "a/.put-1", "-x", "a b", "a\x00b", "é", strings.Repeat("a", 129), strings.Repeat("a/", 300) + "a"} {
		if blob.ValidKey(k) {
			t.Errorf("ValidKey(%q) = true", k)
		}
	}
}

// TestDiskRefusesTraversal: a key that would leave the directory is
// refused by every method, and nothing is written anywhere.
func TestDiskRefusesTraversal(t *testing.T) {
	d, dir := mustOpen(t)
	ctx := context.Background()
	for _, k := range []string{"../escape", "a/../../escape", "/etc/passwd", `..\escape`, "a/.put-x"} {
		t.Run(k, func(t *testing.T) {
			if err := d.Put(ctx, k, strings.NewReader("x"), 1, "text/plain"); !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("Put = %v, want ErrInvalidKey", err)
			}
			if _, _, err := d.Get(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("Get = %v, want ErrInvalidKey", err)
			}
			if err := d.Delete(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("Delete = %v, want ErrInvalidKey", err)
			}
		})
	}
	if f := files(t, dir); len(f) != 0 {
		t.Fatalf("files written: %v", f)
	}
}

func TestDiskPutGetDelete(t *testing.T) {
	d, _ := mustOpen(t)
	ctx := context.Background()
	if _, _, err := d.Get(ctx, "t/s/photo"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get before Put = %v", err)
	}
	body := "\x89PNG\r\n\x1a\nrest\nwith newlines\n"
	if err := d.Put(ctx, "t/s/photo", strings.NewReader(body), int64(len(body)), "image/png"); err != nil {
		t.Fatal(err)
	}
	got, info := get(t, d, "t/s/photo")
	if got != body || info.Size != int64(len(body)) || info.ContentType != "image/png" || info.ModTime.IsZero() {
		t.Fatalf("Get = %q %+v", got, info)
	}
	if err := d.Delete(ctx, "t/s/photo"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "t/s/photo"); err != nil {
		t.Fatalf("second Delete = %v", err)
	}
	if _, _, err := d.Get(ctx, "t/s/photo"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	if ents, _ := os.ReadDir(d.Dir()); len(ents) != 0 {
		t.Fatalf("Delete left %d entries under the root", len(ents))
	}
}

// failing fails after handing out some bytes, like an upload cut off or
// refused over its size limit.
type failing struct{ n int }

var errCut = errors.New("cut")

func (f *failing) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errCut
	}
	n := min(len(p), f.n)
	for i := range n {
		p[i] = 'x'
	}
	f.n -= n
	return n, nil
}

// TestDiskAtomicReplace: a Put replaces an object whole; a Put whose reader
// fails, or ends short of its size, leaves the old object and no temporary
// file; a Put of a new key that fails leaves nothing at all.
func TestDiskAtomicReplace(t *testing.T) {
	d, dir := mustOpen(t)
	ctx := context.Background()
	put := func(key, s, ct string) {
		t.Helper()
		if err := d.Put(ctx, key, strings.NewReader(s), -1, ct); err != nil {
			t.Fatal(err)
		}
	}
	put("k/v", "old", "text/plain")
	put("k/v", "new bytes", "image/jpeg")
	if got, info := get(t, d, "k/v"); got != "new bytes" || info.ContentType != "image/jpeg" {
		t.Fatalf("after replace: %q %+v", got, info)
	}
	if err := d.Put(ctx, "k/v", &failing{n: 70000}, -1, "image/png"); !errors.Is(err, errCut) {
		t.Fatalf("failing Put = %v, want the reader's error", err)
	}
	if err := d.Put(ctx, "k/v", strings.NewReader("short"), 10, "image/png"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short Put = %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Put(cctx, "k/v", strings.NewReader("x"), -1, "image/png"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Put = %v", err)
	}
	if got, _ := get(t, d, "k/v"); got != "new bytes" {
		t.Fatalf("a failed Put changed the object: %q", got)
	}
	if f := files(t, dir); len(f) != 1 {
		t.Fatalf("files = %v, want only k/v", f)
	}
	if err := d.Put(ctx, "fresh/dir/obj", &failing{n: 10}, -1, "image/png"); !errors.Is(err, errCut) {
		t.Fatalf("failing Put = %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.Dir(), "fresh")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed Put left its directory: %v", err)
	}
	if err := d.Put(ctx, "k/w", strings.NewReader("x"), -1, "bad\ntype"); err == nil {
		t.Fatal("a content type with a newline was accepted")
	}
}

// TestDiskConcurrentReplace: readers racing writers of one key always read
// one whole version.
func TestDiskConcurrentReplace(t *testing.T) {
	d, _ := mustOpen(t)
	ctx := context.Background()
	versions := []string{strings.Repeat("a", 100000), strings.Repeat("b", 3000)}
	if err := d.Put(ctx, "k", strings.NewReader(versions[0]), -1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 20 {
				if err := d.Put(ctx, "k", strings.NewReader(versions[(w+i)%2]), -1, "text/plain"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 50 {
				rc, info, err := d.Get(ctx, "k")
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(rc)
				_ = rc.Close()
				if !bytes.Equal(b, []byte(versions[0])) && !bytes.Equal(b, []byte(versions[1])) || int64(len(b)) != info.Size {
					t.Errorf("read a torn object: %d bytes, info %d", len(b), info.Size)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestDiskForeignFile: a file under the root that Disk did not write (no
// header, or a header without an end) is an error, not an object.
func TestDiskForeignFile(t *testing.T) {
	d, _ := mustOpen(t)
	for name, content := range map[string]string{"plain": "just text\n", "endless": strings.Repeat("x", 10000)} {
		if err := os.WriteFile(filepath.Join(d.Dir(), name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.Get(context.Background(), name); err == nil || errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Get(%s) = %v, want a not-an-object error", name, err)
		}
	}
}
