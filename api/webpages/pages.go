package webpages

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/web"
)

// webSettings are the page settings baked into dist/config.json at build
// time (npm run build reads HEXTRACK_TILE_URL and HEXTRACK_TILE_ATTRIBUTION).
// The server reads the same file so the CSP admits the tile host.
type webSettings struct {
	TileURL         string `json:"tileURL"`
	TileAttribution string `json:"tileAttribution"`
}

// webFile is one embedded file, read once at start.
type webFile struct {
	body  []byte
	etag  string
	ctype string
}

// Handler serves embedded files with the page security headers. Files
// are read into memory once: the whole dist is a few hundred KiB.
type Handler struct {
	files map[string]webFile
	built bool
	csp   string
	start time.Time
}

// New reads the files of fsys (package web's dist) into a Handler.
func New(fsys fs.FS) *Handler {
	h := &Handler{files: map[string]webFile{}, built: web.Built(fsys), start: time.Now()}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path.Base(p), ".") {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(b)
		}
		if path.Ext(p) == ".map" {
			ct = "application/json"
		}
		h.files[p] = webFile{body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: ct}
		return nil
	})
	var set webSettings
	if f, ok := h.files["config.json"]; ok {
		_ = json.Unmarshal(f.body, &set)
	}
	h.csp = contentSecurityPolicy(set.TileURL)
	return h
}

// contentSecurityPolicy allows only this origin, plus the tile host for
// images when a tile URL is configured. No inline scripts or styles:
// Leaflet and uPlot style elements through the CSSOM, which CSP permits.
func contentSecurityPolicy(tileURL string) string {
	img := "'self' data:"
	if src := tileSource(tileURL); src != "" {
		img += " " + src
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src " + img,
		"connect-src 'self'",
		"font-src 'self'",
		"worker-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
}

// tileSource turns a Leaflet tile template such as
// https://{s}.tile.example.org/{z}/{x}/{y}.png into a CSP source
// (https://*.tile.example.org). Anything not http(s) yields "".
func tileSource(tmpl string) string {
	if tmpl == "" {
		return ""
	}
	u, err := url.Parse(strings.ReplaceAll(tmpl, "{s}", "sub"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	host := u.Host
	if strings.HasPrefix(tmpl[len(u.Scheme)+3:], "{s}.") {
		host = "*." + strings.TrimPrefix(host, "sub.")
	}
	if strings.ContainsAny(host, "{}; '\"") {
		return ""
	}
	return u.Scheme + "://" + host
}

// setSecurityHeaders sets the headers every page and asset carries.
func (h *Handler) setSecurityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "geolocation=(self), camera=(), microphone=()")
}

// Page serves one HTML page, or the "run make web" page when the binary
// was built without the web build.
func (h *Handler) Page(name string) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !h.built {
			h.setSecurityHeaders(c.Response().Header())
			c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
			return c.HTMLBlob(http.StatusOK, notBuiltPage)
		}
		return h.serve(c, name)
	}
}

// File serves /assets/*, /favicon.svg and /config.json.
func (h *Handler) File(c echo.Context) error {
	p := strings.TrimPrefix(c.Request().URL.Path, "/")
	if !fs.ValidPath(p) {
		return echo.ErrNotFound
	}
	return h.serve(c, p)
}

func (h *Handler) serve(c echo.Context, name string) error {
	f, ok := h.files[name]
	if !ok {
		return echo.ErrNotFound
	}
	hd := c.Response().Header()
	h.setSecurityHeaders(hd)
	hd.Set(echo.HeaderContentType, f.ctype)
	hd.Set("ETag", f.etag)
	// Names are stable (rider.js, not rider-<hash>.js), so browsers
	// revalidate every load; the ETag makes that a 304.
	hd.Set(echo.HeaderCacheControl, "no-cache")
	http.ServeContent(c.Response(), c.Request(), name, h.start, bytes.NewReader(f.body))
	return nil
}

var notBuiltPage = []byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hextrack — web pages not built</title></head>
<body><h1>hextrack</h1>
<p>The web pages are not built into this binary. Run <code>make web</code>
(or <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>) and rebuild the server.</p>
<p>The API is up: see <a href="/openapi.yaml">/openapi.yaml</a>.</p>
</body></html>
`)
