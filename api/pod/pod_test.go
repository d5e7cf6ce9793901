package pod_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/pod"
)

// TestProofUploadAndRead: a real PNG signature and a JPEG photo (its
// geotag after the file) are stored (201), Has says so, the list and the
// file are served to the rider, the driver and ops with the stored type
// and safe headers, and each upload is a stop.proof event on the trip.
func TestProofUploadAndRead(t *testing.T) {
	e := newEnv(t)
	id, rider, driver := e.running(t)
	sig, photo := pngBytes(t), jpegBytes(t)

	r := e.upload(t, id, dropStop, pod.KindSignature, driver, file("application/octet-stream", sig))
	if r.status != http.StatusCreated || r.body["content_type"] != "image/png" || r.body["size"] != float64(len(sig)) {
		t.Fatalf("signature upload = %d %s", r.status, r.raw)
	}
	ev := e.LastEvent(t, id)
	var got pod.Proof
	if err := json.Unmarshal(ev.Data, &got); ev.Type != pod.EventProof || err != nil || got.Kind != pod.KindSignature || got.SHA256 != r.body["sha256"] {
		t.Fatalf("event = %s %s (%v)", ev.Type, ev.Data, err)
	}
	if strings.Contains(string(ev.Data), `"key"`) {
		t.Fatalf("the event shows the blob key: %s", ev.Data)
	}
	r = e.upload(t, id, dropStop, pod.KindPhoto, driver, file("image/jpeg", photo), field("lat", "52.5"), field("lng", "13.38"))
	if r.status != http.StatusCreated || r.body["content_type"] != "image/jpeg" || r.header.Get("Location") == "" {
		t.Fatalf("photo upload = %d %s", r.status, r.raw)
	}
	if g, _ := r.body["geotag"].(map[string]any); g["lat"] != 52.5 || g["lng"] != 13.38 {
		t.Fatalf("geotag = %v", r.body["geotag"])
	}
	if !e.has(t, id, pod.KindPhoto) || !e.has(t, id, pod.KindSignature) {
		t.Fatal("Has = false after the uploads")
	}
	ops := e.token(t, tokens.RoleOps, "ops1")
	base := "/v1/trips/" + id + "/stops/" + dropStop + "/proof"
	for name, tok := range map[string]string{"rider": rider, "driver": driver, "ops": ops} {
		t.Run(name, func(t *testing.T) {
			l := e.do(t, http.MethodGet, base, tok, nil, "")
			ps, _ := l.body["proofs"].([]any)
			if l.status != http.StatusOK || len(ps) != 2 || strings.Contains(string(l.raw), `"key"`) {
				t.Fatalf("list = %d %s", l.status, l.raw)
			}
			for kind, want := range map[string][]byte{pod.KindSignature: sig, pod.KindPhoto: photo} {
				f := e.do(t, http.MethodGet, base+"/"+kind, tok, nil, "")
				h := f.header
				if f.status != http.StatusOK || !bytes.Equal(f.raw, want) {
					t.Fatalf("%s = %d, %d bytes (want %d)", kind, f.status, len(f.raw), len(want))
				}
				wantCT := map[string]string{pod.KindSignature: "image/png", pod.KindPhoto: "image/jpeg"}[kind]
				if h.Get("Content-Type") != wantCT || h.Get("X-Content-Type-Options") != "nosniff" ||
					!strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || !strings.Contains(h.Get("Cache-Control"), "no-store") {
					t.Fatalf("%s headers = %v", kind, h)
				}
			}
		})
	}
	if r := e.do(t, http.MethodGet, base+"/photo", "", nil, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("anonymous read = %d", r.status)
	}
}

// TestProofReplace: a second photo replaces the first; the first file is
// deleted, the new bytes are served.
func TestProofReplace(t *testing.T) {
	e := newEnv(t)
	id, rider, driver := e.running(t)
	first, second := jpegBytes(t), padded(t, 100)
	for _, b := range [][]byte{first, second} {
		if r := e.upload(t, id, dropStop, pod.KindPhoto, driver, file("image/jpeg", b)); r.status != http.StatusCreated {
			t.Fatalf("upload = %d %s", r.status, r.raw)
		}
	}
	if f := e.stored(t); len(f) != 1 {
		t.Fatalf("blob files = %v, want the second only", f)
	}
	f := e.do(t, http.MethodGet, "/v1/trips/"+id+"/stops/"+dropStop+"/proof/photo", rider, nil, "")
	if f.status != http.StatusOK || !bytes.Equal(f.raw, second) {
		t.Fatalf("after replace: %d, %d bytes", f.status, len(f.raw))
	}
}

// TestProofOversize: a photo one byte over 5 MiB, a signature one byte
// over 512 KiB, and a body over its bound around a file within its limit are refused with
// 413 upload_too_large; nothing is stored (no file, no record, no event).
// A 2 MiB photo, over api's 1 MiB body limit, is within its own and passes.
func TestProofOversize(t *testing.T) {
	e := newEnv(t)
	id, _, driver := e.running(t)
	events := e.StreamLen(t, id)
	cases := []struct {
		name  string
		kind  string
		parts []part
	}{
		{"photo", pod.KindPhoto, []part{file("image/jpeg", padded(t, pod.DefaultMaxPhoto+1-len(jpegBytes(t))))}},
		{"signature", pod.KindSignature, []part{file("image/png", append(pngBytes(t), make([]byte, pod.DefaultMaxSignature+1-len(pngBytes(t)))...))}},
		// The file is within its limit; 120 KB of preamble before the form
		// is not: the body's own bound (limit + 64 KiB) refuses it.
		{"body", pod.KindSignature, []part{file("image/png", append(pngBytes(t), make([]byte, pod.DefaultMaxSignature-2000)...))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, ct := form(t, c.parts...)
			if c.name == "body" {
				b = bytes.NewBuffer(append(bytes.Repeat([]byte("x\r\n"), 40000), b.Bytes()...))
			}
			r := e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/"+dropStop+"/proof/"+c.kind, driver, b, ct)
			if r.status != http.StatusRequestEntityTooLarge || r.code != "upload_too_large" {
				t.Fatalf("upload = %d %s", r.status, r.raw)
			}
			if f := e.stored(t); len(f) != 0 {
				t.Fatalf("stored: %v", f)
			}
			if e.has(t, id, c.kind) || e.StreamLen(t, id) != events {
				t.Fatal("a record or an event of a refused upload")
			}
		})
	}
	big := padded(t, 2<<20)
	if r := e.upload(t, id, dropStop, pod.KindPhoto, driver, file("image/jpeg", big)); r.status != http.StatusCreated || r.body["size"] != float64(len(big)) {
		t.Fatalf("2 MiB photo = %d %s", r.status, r.raw)
	}
}

// TestProofNotAnImage: the type is the content's, not the declared one: a
// text file sent as image/jpeg named .jpg, an SVG signature (script risk),
// a JPEG signature and an empty file are refused; nothing is stored.
func TestProofNotAnImage(t *testing.T) {
	e := newEnv(t)
	id, _, driver := e.running(t)
	svg := `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`
	cases := []struct {
		name   string
		kind   string
		data   []byte
		ctype  string
		status int
		code   string
	}{
		{"text as jpeg", pod.KindPhoto, []byte("just some text, renamed to .jpg\n"), "image/jpeg", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"html as png", pod.KindPhoto, []byte("<html><script>alert(1)</script></html>"), "image/png", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"svg signature", pod.KindSignature, []byte(svg), "image/svg+xml", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"jpeg signature", pod.KindSignature, jpegBytes(t), "image/jpeg", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"png magic only", pod.KindPhoto, []byte("\x89PNG"), "image/png", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"empty", pod.KindPhoto, nil, "image/jpeg", http.StatusBadRequest, "invalid_argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.upload(t, id, dropStop, c.kind, driver, file(c.ctype, c.data))
			if r.status != c.status || r.code != c.code {
				t.Fatalf("upload = %d %s", r.status, r.raw)
			}
			if f := e.stored(t); len(f) != 0 || e.has(t, id, c.kind) {
				t.Fatalf("stored: %v", f)
			}
		})
	}
}

// TestProofAccess: only the trip's driver uploads, for a drop stop of a
// trip not ended; reads are the trip's rider, driver and ops only.
func TestProofAccess(t *testing.T) {
	e := newEnv(t)
	id, rider, driver := e.running(t)
	otherID, otherRider, otherDriver := e.running(t)
	ok := file("image/png", pngBytes(t))
	cases := []struct {
		name   string
		trip   string
		stop   string
		tok    string
		status int
	}{
		{"driver of another trip", id, dropStop, otherDriver, http.StatusForbidden},
		{"the rider", id, dropStop, rider, http.StatusForbidden},
		{"ops", id, dropStop, e.token(t, tokens.RoleOps, "ops1"), http.StatusForbidden},
		{"no token", id, dropStop, "", http.StatusUnauthorized},
		{"unknown trip", "t_nope", dropStop, driver, http.StatusNotFound},
		{"not a drop stop", id, "pickup", driver, http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run("upload/"+c.name, func(t *testing.T) {
			if r := e.upload(t, c.trip, c.stop, pod.KindSignature, c.tok, ok); r.status != c.status {
				t.Fatalf("upload = %d %s, want %d", r.status, r.raw, c.status)
			}
		})
	}
	if f := e.stored(t); len(f) != 0 {
		t.Fatalf("stored: %v", f)
	}
	if r := e.upload(t, id, dropStop, pod.KindSignature, driver, ok); r.status != http.StatusCreated {
		t.Fatalf("own upload = %d %s", r.status, r.raw)
	}
	reads := []struct {
		name   string
		tok    string
		status int
	}{
		{"driver of another trip", otherDriver, http.StatusForbidden},
		{"rider of another trip", otherRider, http.StatusForbidden},
		{"a viewer", e.viewer(t, id), http.StatusForbidden},
		{"no token", "", http.StatusUnauthorized},
	}
	for _, c := range reads {
		t.Run("read/"+c.name, func(t *testing.T) {
			for _, p := range []string{"", "/signature"} {
				r := e.do(t, http.MethodGet, "/v1/trips/"+id+"/stops/"+dropStop+"/proof"+p, c.tok, nil, "")
				if r.status != c.status || bytes.Contains(r.raw, []byte("PNG")) {
					t.Fatalf("GET proof%s = %d %s, want %d", p, r.status, r.raw, c.status)
				}
			}
		})
	}
	if r := e.do(t, http.MethodGet, "/v1/trips/"+otherID+"/stops/"+dropStop+"/proof/signature", otherRider, nil, ""); r.status != http.StatusNotFound || r.code != "not_found" {
		t.Fatalf("no proof yet = %d %s", r.status, r.raw)
	}
	// A trip that ended: its stop is final, no more uploads.
	tr, _, drv := e.TripIn(t, "completed")
	if r := e.upload(t, tr.ID, dropStop, pod.KindPhoto, e.token(t, tokens.RoleDriver, drv), file("image/jpeg", jpegBytes(t))); r.status != http.StatusConflict {
		t.Fatalf("upload after the end = %d %s", r.status, r.raw)
	}
}

// TestProofBadInput: traversal in the stop id or kind, unknown kinds, a
// form without a file, not multipart, a lone or bad lat/lng, a geotag on a
// signature, unknown fields, two files: 400, nothing stored.
func TestProofBadInput(t *testing.T) {
	e := newEnv(t)
	id, rider, driver := e.running(t)
	img := file("image/png", pngBytes(t))
	paths := []string{
		"/stops/../proof/photo", "/stops/%2e%2e/proof/photo", "/stops/..%2f..%2fetc/proof/photo", "/stops/a.b/proof/photo",
		"/stops/" + dropStop + "/proof/..", "/stops/" + dropStop + "/proof/%2e%2e", "/stops/" + dropStop + "/proof/video",
		"/stops/" + strings.Repeat("s", 65) + "/proof/photo",
	}
	for _, p := range paths {
		t.Run("path "+p, func(t *testing.T) {
			b, ct := form(t, img)
			if r := e.do(t, http.MethodPost, "/v1/trips/"+id+p, driver, b, ct); r.status != http.StatusBadRequest {
				t.Fatalf("POST = %d %s", r.status, r.raw)
			}
			if r := e.do(t, http.MethodGet, "/v1/trips/"+id+p, rider, nil, ""); r.status != http.StatusBadRequest {
				t.Fatalf("GET = %d %s", r.status, r.raw)
			}
		})
	}
	forms := []struct {
		name  string
		kind  string
		parts []part
	}{
		{"no file part", pod.KindPhoto, []part{field("lat", "52.5"), field("lng", "13.4")}},
		{"file under another name", pod.KindPhoto, []part{{"photo", "x.jpg", "image/jpeg", jpegBytes(t)}}},
		{"lat without lng", pod.KindPhoto, []part{file("image/jpeg", jpegBytes(t)), field("lat", "52.5")}},
		{"lat out of range", pod.KindPhoto, []part{field("lat", "95"), field("lng", "13.4"), file("image/jpeg", jpegBytes(t))}},
		{"lng not a number", pod.KindPhoto, []part{field("lat", "52"), field("lng", "east"), file("image/jpeg", jpegBytes(t))}},
		{"geotag on a signature", pod.KindSignature, []part{img, field("lat", "52.5"), field("lng", "13.4")}},
		{"unknown field", pod.KindPhoto, []part{file("image/jpeg", jpegBytes(t)), field("note", "hi")}},
		{"two files", pod.KindSignature, []part{img, img}},
	}
	for _, c := range forms {
		t.Run(c.name, func(t *testing.T) {
			if r := e.upload(t, id, dropStop, c.kind, driver, c.parts...); r.status != http.StatusBadRequest || r.code != "invalid_argument" {
				t.Fatalf("upload = %d %s", r.status, r.raw)
			}
		})
	}
	r := e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/"+dropStop+"/proof/photo", driver, bytes.NewReader(jpegBytes(t)), "image/jpeg")
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.raw), "multipart/form-data") {
		t.Fatalf("raw body = %d %s", r.status, r.raw)
	}
	if f := e.stored(t); len(f) != 0 || e.has(t, id, pod.KindPhoto) || e.has(t, id, pod.KindSignature) {
		t.Fatalf("stored: %v", f)
	}
	if _, err := e.svc.Has(context.Background(), id, "../x", pod.KindPhoto); err == nil {
		t.Fatal("Has took a traversal stop id")
	}
}
