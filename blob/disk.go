package blob

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Disk is the local-disk Store: one file per object under a root
// directory, the key's segments its path. A file starts with a one-line
// header holding its content type ("hxblob1 image/png\n"), so an object
// and its type are written by one rename. A crash during a Put can leave
// a temporary ".put-*" file beside its object; no key can name it, and
// it may be deleted by hand.
type Disk struct {
	root string
}

var _ Store = (*Disk)(nil)

// header is the first line of every object file.
const header = "hxblob1 "

// OpenDisk returns the Store kept in dir, creating it (0700) if need be.
func OpenDisk(dir string) (*Disk, error) {
	if dir == "" {
		return nil, errors.New("blob: no directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return &Disk{root: abs}, nil
}

// Dir is the root directory.
func (d *Disk) Dir() string { return d.root }

// path is key's file, after checking the key.
func (d *Disk) path(key string) (string, error) {
	if !ValidKey(key) {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, clip(key))
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put writes r to a temporary file beside key's, fsyncs it, renames it
// over key's and fsyncs the directory. On any failure the temporary file
// is removed, and so are directories it left empty.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (err error) {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if !validType(contentType) {
		return fmt.Errorf("blob: invalid content type %q", clip(contentType))
	}
	dir := filepath.Dir(p)
	f, err := d.createTemp(dir)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			d.prune(dir)
		}
	}()
	if _, err = io.WriteString(f, header+contentType+"\n"); err != nil {
		return fmt.Errorf("blob: write %s: %w", key, err)
	}
	n, err := io.Copy(f, ctxReader{ctx: ctx, r: r})
	if err != nil {
		return fmt.Errorf("blob: write %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("blob: write %s: %d bytes, want %d: %w", key, n, size, io.ErrUnexpectedEOF)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("blob: sync %s: %w", key, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("blob: close %s: %w", key, err)
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("blob: rename %s: %w", key, err)
	}
	return syncDir(dir)
}

// createTemp makes dir and a temporary file in it. A concurrent Delete may
// prune the fresh directory before the file exists: then it tries again.
func (d *Disk) createTemp(dir string) (*os.File, error) {
	var err error
	for range 3 {
		if err = os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("blob: %w", err)
		}
		var f *os.File
		// A leading '.' keeps temporary files out of every valid key.
		if f, err = os.CreateTemp(dir, ".put-*"); err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return nil, fmt.Errorf("blob: %w", err)
}

// Get opens key's file past its header.
func (d *Disk) Get(_ context.Context, key string) (io.ReadCloser, Info, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(p) //nolint:gosec // G304: p is under root, its key checked by ValidKey
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("blob: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Info{}, fmt.Errorf("blob: %w", err)
	}
	// The header fits the reader's buffer (ReadSlice fails past it), so a
	// file that is not ours is never read whole.
	br := bufio.NewReaderSize(f, 4096)
	b, err := br.ReadSlice('\n')
	line := string(b)
	ct, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), header)
	if err != nil || !ok || !validType(ct) {
		_ = f.Close()
		return nil, Info{}, fmt.Errorf("blob: %s: not an object file", key)
	}
	info := Info{Size: st.Size() - int64(len(line)), ContentType: ct, ModTime: st.ModTime()}
	return readCloser{Reader: br, Closer: f}, info, nil
}

// Delete removes key's file and the directories that leaves empty.
func (d *Disk) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: %w", err)
	}
	d.prune(filepath.Dir(p))
	return nil
}

// prune removes dir and its parents while they are empty, up to the root
// (not included). os.Remove refuses a directory that is not empty, so a
// concurrent Put's directory stays once its temporary file exists.
func (d *Disk) prune(dir string) {
	for dir != d.root && strings.HasPrefix(dir, d.root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// syncDir fsyncs dir so a rename in it survives a crash.
func syncDir(dir string) error {
	f, err := os.Open(dir) //nolint:gosec // G304: a directory under root
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blob: sync dir: %w", err)
	}
	return nil
}

// validType: a MIME type fit for the header line and an HTTP header.
func validType(ct string) bool {
	if ct == "" || len(ct) > 255 {
		return false
	}
	for i := 0; i < len(ct); i++ {
		if ct[i] < 0x20 || ct[i] > 0x7e {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context //nolint:containedctx // lives for one Put
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type readCloser struct {
	io.Reader
	io.Closer
}
