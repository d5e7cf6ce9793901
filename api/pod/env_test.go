package pod_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path/filepath"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	podapi "github.com/hextrack/hextrack/api/pod"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/blob"
	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/pod/podredis"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

const secret = "0123456789abcdef0123456789abcdef-test"

// dropStop is the stop id the fake Stops treats as every trip's drop stop.
const dropStop = "dropoff"

// fakeStops is the stop lifecycle's DropStop over real trips: the one
// drop stop is "dropoff", final once the trip has ended.
type fakeStops struct{ trips *tripredis.Store }

func (f fakeStops) DropStop(ctx context.Context, tripID, stopID, driverID string) error {
	t, err := f.trips.Get(ctx, tripID)
	switch {
	case err != nil:
		return err
	case stopID != dropStop:
		return fmt.Errorf("%w: trip %s has no drop stop %s", trip.ErrNotFound, tripID, stopID)
	case t.DriverID != driverID:
		return fmt.Errorf("%w: not the trip's driver", trip.ErrForbidden)
	case t.Status == trip.StatusCompleted || t.Status == trip.StatusCancelled:
		return fmt.Errorf("%w: the stop is final", trip.ErrInvalidTransition)
	}
	return nil
}

type env struct {
	*triptest.Env
	base  string
	auth  *tokens.Auth
	svc   *pod.Service
	blobs *blob.Disk
}

func newEnv(t *testing.T) *env {
	t.Helper()
	te := triptest.MustEnv(t, tripredis.Config{})
	disk, err := blob.OpenDisk(filepath.Join(t.TempDir(), "pod"))
	if err != nil {
		t.Fatal(err)
	}
	store := podredis.New(te.RDB, podredis.Config{Prefix: te.Prefix})
	svc := pod.NewService(disk, store, te.Feed.Publisher, pod.Config{}, nil)
	routes := podapi.New(svc, fakeStops{te.Trips.Store()}, te.Trips.Store(), svc.Config())
	srv := api.New(api.Config{JWTSecret: []byte(secret)}, api.Deps{Routes: []api.Routes{routes}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{Env: te, base: ts.URL, auth: srv.Auth(), svc: svc, blobs: disk}
}

func (e *env) token(t *testing.T, role, sub string) string {
	t.Helper()
	tok, err := e.auth.Mint(tokens.Request{Role: role, Sub: sub, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// viewer is a share-link viewer's token for the trip.
func (e *env) viewer(t *testing.T, tripID string) string {
	t.Helper()
	tok, err := e.auth.Mint(tokens.Request{Role: tokens.RoleViewer, Sub: "v1", Trip: tripID, ID: "s_1", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// running is a trip in progress with tokens for its rider and driver.
func (e *env) running(t *testing.T) (id, rider, driver string) {
	t.Helper()
	tr, ra, drv := e.TripIn(t, trip.StatusInProgress)
	return tr.ID, e.token(t, tokens.RoleRider, ra.ID), e.token(t, tokens.RoleDriver, drv)
}

// part is one part of a multipart form.
type part struct {
	name, filename, ctype string
	data                  []byte
}

func file(ctype string, data []byte) part { return part{"file", "upload.jpg", ctype, data} }
func field(name, v string) part           { return part{name: name, data: []byte(v)} }

func form(t *testing.T, parts ...part) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name=%q`, p.name)
		if p.filename != "" {
			cd += fmt.Sprintf(`; filename=%q`, p.filename)
		}
		h.Set("Content-Disposition", cd)
		if p.ctype != "" {
			h.Set("Content-Type", p.ctype)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pw.Write(p.data)
	}
	_ = w.Close()
	return &b, w.FormDataContentType()
}

type reply struct {
	status int
	code   string
	header http.Header
	raw    []byte
	body   map[string]any
}

func (e *env) do(t *testing.T, method, path, tok string, body io.Reader, ctype string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	if er, ok := r.body["error"].(map[string]any); ok {
		r.code, _ = er["code"].(string)
	}
	return r
}

// upload posts parts as the proof of kind for the trip's drop stop.
func (e *env) upload(t *testing.T, tripID, stop, kind, tok string, parts ...part) reply {
	t.Helper()
	b, ct := form(t, parts...)
	return e.do(t, http.MethodPost, "/v1/trips/"+tripID+"/stops/"+stop+"/proof/"+kind, tok, b, ct)
}

// stored lists the files in the blob directory, temporary ones included.
func (e *env) stored(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(e.blobs.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) has(t *testing.T, tripID, kind string) bool {
	t.Helper()
	ok, err := e.svc.Has(context.Background(), tripID, dropStop, kind)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func testImage(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 13), uint8(x ^ y), 255})
		}
	}
	return img
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testImage(16, 8)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testImage(16, 16), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// padded is a real JPEG followed by n bytes of padding (after the end
// marker, as some cameras append): n bytes larger, same type.
func padded(t *testing.T, n int) []byte {
	t.Helper()
	return append(jpegBytes(t), make([]byte, n)...)
}
