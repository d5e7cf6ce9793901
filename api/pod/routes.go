package pod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/trip"
)

// Proofs are the proofs of delivery (pod.Service).
type Proofs interface {
	Stage(ctx context.Context, in pod.Upload, r io.Reader) (*pod.Staged, error)
	List(ctx context.Context, tripID, stopID string) ([]pod.Proof, error)
	Open(ctx context.Context, tripID, stopID, kind string) (pod.Proof, io.ReadCloser, error)
}

// Stops says whether a driver may prove delivery at a stop
// (tripredis.Service): nil if stopID is a drop stop of the trip, driverID
// its driver and the stop not final; else trip.ErrNotFound, a forbidden
// or a conflict sentinel, mapped by api's error table.
type Stops interface {
	DropStop(ctx context.Context, tripID, stopID, driverID string) error
}

// Trips checks that a caller may see a trip (api.TripViews).
type Trips interface {
	Authorize(ctx context.Context, id string, a trip.Actor) (trip.Trip, error)
}

// Routes are the proof-of-delivery routes.
type Routes struct {
	proofs Proofs
	stops  Stops
	trips  Trips
	limits pod.Config
}

// New returns the routes. A nil proofs answers every route 503 (no blob
// directory on this node); a nil stops answers uploads 503 (no stop
// lifecycle to check them against).
func New(p Proofs, s Stops, t Trips, limits pod.Config) *Routes {
	return &Routes{proofs: p, stops: s, trips: t, limits: limits}
}

// uploadRoute is the upload's echo path.
const uploadRoute = "/v1/trips/:id/stops/:stop_id/proof/:kind"

// OwnBodyRoutes names the upload (api.OwnBodies): its body is bounded by
// the kind's limit, not api's MaxBody.
func (r *Routes) OwnBodyRoutes() []string { return []string{uploadRoute} }

// Register adds the routes to e.
func (r *Routes) Register(e *echo.Echo) {
	e.POST(uploadRoute, caller.Guard(r.served(r.upload), tokens.RoleDriver))
	read := func(h echo.HandlerFunc) echo.HandlerFunc {
		return caller.GuardScope(r.served(h), tokens.ScopeTripsRead, tokens.RoleRider, tokens.RoleDriver, tokens.RoleOps)
	}
	e.GET("/v1/trips/:id/stops/:stop_id/proof", read(r.list))
	e.GET("/v1/trips/:id/stops/:stop_id/proof/:kind", read(r.file))
}

func (r *Routes) served(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r.proofs == nil || r.trips == nil {
			return fmt.Errorf("%w: proof of delivery is not configured on this node", feed.ErrUnavailable)
		}
		return h(c)
	}
}

// formSlack is what the body may hold besides the file: boundaries, part
// headers, lat and lng.
const formSlack = 64 << 10

// maxField bounds a form field's value (lat, lng).
const maxField = 64

func (r *Routes) upload(c echo.Context) error {
	ctx := c.Request().Context()
	tripID, stopID, kind := c.Param("id"), c.Param("stop_id"), c.Param("kind")
	if err := pod.CheckIDs(tripID, stopID, kind); err != nil {
		return err
	}
	if r.stops == nil {
		return fmt.Errorf("%w: stops are not served by this node", feed.ErrUnavailable)
	}
	driverID := caller.From(c).Subject
	if err := r.stops.DropStop(ctx, tripID, stopID, driverID); err != nil {
		return err
	}
	req := c.Request()
	req.Body = http.MaxBytesReader(c.Response(), req.Body, r.limits.Max(kind)+formSlack)
	mr, err := multipartReader(req)
	if err != nil {
		return err
	}
	in := pod.Upload{TripID: tripID, StopID: stopID, Kind: kind, DriverID: driverID}
	var staged *pod.Staged
	defer func() {
		if staged != nil {
			staged.Discard() // after Commit: nothing
		}
	}()
	fields := map[string]string{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return formError(err)
		}
		switch name := part.FormName(); name {
		case "file":
			if staged != nil {
				return fmt.Errorf("%w: more than one file part", pod.ErrInvalid)
			}
			if staged, err = r.proofs.Stage(ctx, in, part); err != nil {
				return formError(err)
			}
		case "lat", "lng":
			b, err := io.ReadAll(io.LimitReader(part, maxField+1))
			if err != nil {
				return formError(err)
			}
			if len(b) > maxField {
				return fmt.Errorf("%w: %s is too long", pod.ErrInvalid, name)
			}
			fields[name] = string(b)
		default:
			return fmt.Errorf("%w: unknown form field %q (expected file, lat, lng)", pod.ErrInvalid, clip(name))
		}
	}
	if staged == nil {
		return fmt.Errorf("%w: the form has no file part", pod.ErrInvalid)
	}
	g, err := geotag(fields)
	if err != nil {
		return err
	}
	p, err := staged.Commit(ctx, g)
	staged = nil
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/trips/"+tripID+"/stops/"+stopID+"/proof/"+kind)
	return c.JSON(http.StatusCreated, p)
}

// multipartReader is the request's multipart reader, or ErrInvalid naming
// what is wrong with its Content-Type.
func multipartReader(req *http.Request) (*multipart.Reader, error) {
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != "multipart/form-data" {
		return nil, fmt.Errorf("%w: the body must be multipart/form-data with a file part", pod.ErrInvalid)
	}
	mr, err := req.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("%w: multipart body: %w", pod.ErrInvalid, err)
	}
	return mr, nil
}

// formError turns a failure reading the form into pod's sentinels: a
// body past its bound is ErrTooLarge; a malformed form ErrInvalid; pod's
// own errors pass through.
func formError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return fmt.Errorf("%w: the request body is over %d bytes", pod.ErrTooLarge, mbe.Limit)
	case errors.Is(err, pod.ErrInvalid), errors.Is(err, pod.ErrTooLarge), errors.Is(err, pod.ErrUnsupportedType):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(err.Error(), "multipart"):
		return fmt.Errorf("%w: malformed multipart body", pod.ErrInvalid)
	}
	return err
}

// geotag reads lat and lng: both or neither.
func geotag(f map[string]string) (*pod.Geotag, error) {
	lat, hasLat := f["lat"]
	lng, hasLng := f["lng"]
	if !hasLat && !hasLng {
		return nil, nil
	}
	if hasLat != hasLng {
		return nil, fmt.Errorf("%w: lat and lng go together", pod.ErrInvalid)
	}
	la, err1 := strconv.ParseFloat(strings.TrimSpace(lat), 64)
	ln, err2 := strconv.ParseFloat(strings.TrimSpace(lng), 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%w: lat and lng must be decimal degrees", pod.ErrInvalid)
	}
	return &pod.Geotag{Lat: la, Lng: ln}, nil
}

// authorize checks the caller may see the trip and its stop's proofs.
func (r *Routes) authorize(c echo.Context) (tripID, stopID string, err error) {
	tripID, stopID = c.Param("id"), c.Param("stop_id")
	kind := pod.KindPhoto
	if k := c.Param("kind"); k != "" {
		kind = k
	}
	if err := pod.CheckIDs(tripID, stopID, kind); err != nil {
		return "", "", err
	}
	if _, err := r.trips.Authorize(c.Request().Context(), tripID, actor(c)); err != nil {
		return "", "", err
	}
	return tripID, stopID, nil
}

// actor is the caller as trip.Actor; an API key reads as ops (its scope
// was checked by the guard).
func actor(c echo.Context) trip.Actor {
	cl := caller.From(c)
	a := trip.Actor{Role: cl.Role, ID: cl.Subject}
	if cl.Role == tokens.RoleService {
		a.Role = trip.RoleOps
	}
	return a
}

func (r *Routes) list(c echo.Context) error {
	tripID, stopID, err := r.authorize(c)
	if err != nil {
		return err
	}
	ps, err := r.proofs.List(c.Request().Context(), tripID, stopID)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return c.JSON(http.StatusOK, map[string]any{"trip_id": tripID, "stop_id": stopID, "proofs": ps})
}

func (r *Routes) file(c echo.Context) error {
	tripID, stopID, err := r.authorize(c)
	if err != nil {
		return err
	}
	kind := c.Param("kind")
	p, rc, err := r.proofs.Open(c.Request().Context(), tripID, stopID, kind)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", kind+ext(p.ContentType)))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Length", strconv.FormatInt(p.Size, 10))
	h.Set("ETag", `"`+p.SHA256+`"`)
	return c.Stream(http.StatusOK, p.ContentType, rc)
}

func ext(ct string) string {
	switch ct {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/webp":
		return ".webp"
	}
	return ""
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
