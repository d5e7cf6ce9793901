package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/api/pollcache"
	"github.com/hextrack/hextrack/api/sse"
	"github.com/hextrack/hextrack/trip"

	"github.com/hextrack/hextrack/api/tokens"
)

var allRoles = []string{tokens.RoleRider, tokens.RoleDriver, tokens.RoleOps, tokens.RoleViewer}

// tripHandlers serve the trip routes: lifecycle, reads, chat, share links
// and the feed (SSE or long-poll).
type tripHandlers struct {
	trips    Trips
	views    TripViews
	snaps    Snapshots
	shares   Shares
	chat     Chat
	feed     Feed
	polls    *pollcache.Cache // nil: off
	auth     *tokens.Auth     // mints share links' viewer tokens
	sse      *sse.Trips
	longPoll *tripPolls
}

// Route middleware is applied here, once (guard), not passed to echo,
// which would apply it again on every request.
func (s *Server) tripRoutes() {
	g, t := s.e.Group("/v1/trips"), s.trips
	g.POST("", guard(t.trip(t.createTrip), tokens.RoleRider, tokens.RoleOps))
	read := tokens.ScopeTripsRead // API keys: reads as ops, nothing else
	g.GET("/:id", caller.GuardScope(t.trip(t.getTrip), read, allRoles...))
	g.GET("/:id/events", caller.GuardScope(t.trip(t.tripEvents), read, allRoles...))
	g.GET("/:id/path", caller.GuardScope(t.trip(t.tripPath), read, allRoles...))
	g.POST("/:id/cancel", guard(t.trip(t.tripAction(trip.ActCancel)), tokens.RoleRider, tokens.RoleDriver, tokens.RoleOps))
	g.POST("/:id/dropoff", guard(t.trip(t.changeDropoff), tokens.RoleRider, tokens.RoleOps))
	g.POST("/:id/messages", guard(t.trip(t.postMessage), tokens.RoleRider, tokens.RoleDriver, tokens.RoleOps))
	g.POST("/:id/share", guard(t.trip(t.shareTrip), tokens.RoleRider, tokens.RoleOps))
	g.DELETE("/:id/share/:share", guard(t.trip(t.revokeShare), tokens.RoleRider, tokens.RoleOps))
	for _, a := range []string{trip.ActAccept, trip.ActDecline, trip.ActArrived, trip.ActPickup, trip.ActComplete} {
		g.POST("/:id/"+a, guard(t.trip(t.tripAction(a)), tokens.RoleDriver, tokens.RoleOps))
	}
	g.POST("/:id/reassign", caller.GuardScope(t.trip(t.tripAction(trip.ActReassign)), tokens.ScopeOps, tokens.RoleOps))
}

// trip wraps a trip handler: 503 when this server has no trip service. (A
// change forgets the trip's cached poll tag: pollcache's ForgetTripChanges
// middleware.)
func (s *tripHandlers) trip(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.trips == nil || s.views == nil || s.snaps == nil || s.shares == nil || s.chat == nil || s.feed == nil {
			return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "trips are not served by this node"}
		}
		return h(c)
	}
}

// actor turns the caller's claims into the rider package's Actor. A
// service (API key) acts as ops: only routes guarded by
// caller.GuardScope admit one, each after checking its key's scope.
func actor(c echo.Context) trip.Actor {
	cl := claims(c)
	if cl == nil {
		return trip.Actor{}
	}
	a := trip.Actor{Role: cl.Role, ID: cl.Subject}
	if cl.Role == tokens.RoleService {
		a.Role = trip.RoleOps
	}
	if cl.Role == tokens.RoleViewer {
		a.Trip, a.Share = cl.Trip, cl.ID
	}
	return a
}

func (s *tripHandlers) createTrip(c echo.Context) error {
	var r trip.CreateRequest
	if err := bindJSON(c, &r); err != nil {
		return err
	}
	snap, created, err := s.trips.Create(c.Request().Context(), actor(c), c.Request().Header.Get("Idempotency-Key"), r)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	if !created {
		h.Set("Idempotent-Replayed", "true")
	}
	h.Set(echo.HeaderLocation, "/v1/trips/"+snap.Trip.ID)
	h.Set("ETag", snap.ETag())
	return c.JSON(http.StatusCreated, snap)
}

// pollInterval is the hint (seconds) for clients polling a snapshot: fast
// while a driver is on the way, slower while waiting, slow once over.
func pollInterval(status string) int {
	switch {
	case trip.Terminal(status):
		return 30
	case status == trip.StatusRequested || status == trip.StatusAwaitingPayment:
		return 5
	}
	return 2
}

// getTrip is the snapshot, with ETag / If-None-Match → 304 for polling and
// an X-Poll-Interval hint (seconds). A matching If-None-Match may be
// answered from the node's recent tags (package pollcache: never older than
// Config.PollCacheTTL).
func (s *tripHandlers) getTrip(c echo.Context) error {
	ctx, id, a := c.Request().Context(), c.Param("id"), actor(c)
	h := c.Response().Header()
	k, cache := pollKeyOf("", a)
	cache = cache && s.polls != nil
	inm := c.Request().Header.Get("If-None-Match")
	if inm != "" {
		if cache {
			if etag, every, ok := s.polls.Get(id, k); ok && etagMatch(inm, etag[0]) {
				pollHeaders(h, etag, every)
				return c.NoContent(http.StatusNotModified)
			}
		}
		// A poller: compare with the tag alone (one small read, same
		// access check) and load the snapshot only when it changed.
		at := time.Now()
		etag, status, err := s.views.SnapshotTag(ctx, id, a)
		if err != nil {
			return err
		}
		every, etagV := pollInterval(status), []string{etag}[:1:1]
		if cache {
			s.polls.Put(id, k, etagV, every, at)
		}
		if etagMatch(inm, etag) {
			pollHeaders(h, etagV, every)
			return c.NoContent(http.StatusNotModified)
		}
	}
	at := time.Now()
	snap, err := s.snaps.Snapshot(ctx, id, a)
	if err != nil {
		return err
	}
	etag, every := snap.ETag(), pollInterval(snap.Trip.Status)
	etagV := []string{etag}[:1:1]
	if cache {
		s.polls.Put(id, k, etagV, every, at)
	}
	pollHeaders(h, etagV, every)
	if etagMatch(inm, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSON(http.StatusOK, snap)
}

// pollKeyOf is the pollcache key of resource res ("" for the trip, else a
// payment ID) as seen by a; ok is false for callers never served from the
// cache (viewers: a revoked share must be refused at once).
func pollKeyOf(res string, a trip.Actor) (k pollcache.Key, ok bool) {
	if a.Role == "" || a.Role == tokens.RoleViewer {
		return pollcache.Key{}, false
	}
	return pollcache.Key{Res: res, Role: a.Role, Sub: a.ID}, true
}

// Header values of polls, built once (see secureHeaders on sharing them).
var (
	privateNoCache = []string{"private, no-cache"}[:1:1]
	pollEvery      = map[int][]string{2: {"2"}, 5: {"5"}, 30: {"30"}}
)

// pollHeaders sets a trip poll's ETag (the header's value: []string{tag},
// shared, never written to), Cache-Control and X-Poll-Interval (seconds),
// assigned under their canonical keys.
func pollHeaders(h http.Header, etag []string, every int) {
	h["Etag"] = etag
	h["Cache-Control"] = privateNoCache
	if v, ok := pollEvery[every]; ok {
		h["X-Poll-Interval"] = v[:1:1]
	} else {
		h["X-Poll-Interval"] = []string{strconv.Itoa(every)}
	}
}

// etagMatch implements If-None-Match's weak comparison over a list.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for header != "" {
		var t string
		t, header, _ = strings.Cut(header, ",")
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// tripEvents serves the trip's feed: SSE when the client accepts
// text/event-stream, else JSON long-polling.
func (s *tripHandlers) tripEvents(c echo.Context) error {
	id, a := c.Param("id"), actor(c)
	if _, err := s.views.Authorize(c.Request().Context(), id, a); err != nil {
		return err
	}
	if strings.Contains(c.Request().Header.Get(echo.HeaderAccept), "text/event-stream") {
		return s.sse.Serve(c, id, a, tokenExpiry(claims(c)))
	}
	return s.longPoll.serve(c, id, a)
}

type reasonBody struct {
	Reason string `json:"reason"`
}

// tripAction is a lifecycle action; the body ({"reason":"…"}) is optional.
func (s *tripHandlers) tripAction(action string) echo.HandlerFunc {
	return func(c echo.Context) error {
		b, err := readBody(c, 4096)
		if err != nil {
			return err
		}
		var r reasonBody
		if len(strings.TrimSpace(string(b))) > 0 {
			if err := decodeJSON(b, &r); err != nil {
				return err
			}
		}
		snap, err := s.trips.Act(c.Request().Context(), c.Param("id"), actor(c), action, r.Reason)
		if err != nil {
			return err
		}
		c.Response().Header().Set("ETag", snap.ETag())
		return c.JSON(http.StatusOK, snap)
	}
}

// changeDropoff: If-Match (a version or the snapshot ETag) makes the change
// conditional: 412 when the trip has moved on.
func (s *tripHandlers) changeDropoff(c echo.Context) error {
	var p trip.Place
	if err := bindJSON(c, &p); err != nil {
		return err
	}
	var want int64
	if im := c.Request().Header.Get("If-Match"); im != "" {
		v, any, err := trip.ParseVersion(im)
		if err != nil {
			return err
		}
		if !any {
			want = v
		}
	}
	snap, err := s.trips.ChangeDropoff(c.Request().Context(), c.Param("id"), actor(c), p, want)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", snap.ETag())
	return c.JSON(http.StatusOK, snap)
}

// postMessage: 201 for a new message, 200 for a retry of one (same
// client_id from the same sender).
func (s *tripHandlers) postMessage(c echo.Context) error {
	var r trip.MessageRequest
	if err := bindJSON(c, &r); err != nil {
		return err
	}
	p, err := s.chat.PostMessage(c.Request().Context(), c.Param("id"), actor(c), r)
	if err != nil {
		return err
	}
	if p.Duplicate {
		return c.JSON(http.StatusOK, p)
	}
	return c.JSON(http.StatusCreated, p)
}

type shareRequest struct {
	TTL string `json:"ttl"`
}

type shareReply struct {
	trip.Share
	Token string `json:"token"`
	URL   string `json:"url"`
}

// shareTrip creates a share link: a viewer token scoped to the trip (its
// jti is the share ID, for revocation) and a URL of the rider map opening it.
func (s *tripHandlers) shareTrip(c echo.Context) error {
	b, err := readBody(c, 4096)
	if err != nil {
		return err
	}
	var r shareRequest
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := decodeJSON(b, &r); err != nil {
			return err
		}
	}
	var ttl time.Duration
	if r.TTL != "" {
		if ttl, err = time.ParseDuration(r.TTL); err != nil || ttl <= 0 {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "ttl must be a duration like 2h"}
		}
	}
	id := c.Param("id")
	sh, err := s.shares.Share(c.Request().Context(), id, actor(c), ttl)
	if err != nil {
		return err
	}
	tok, err := s.auth.Mint(tokens.Request{Role: tokens.RoleViewer, Sub: sh.ID, Trip: id, ID: sh.ID, TTL: time.Until(sh.ExpiresAt)})
	if err != nil {
		return err
	}
	// The token rides in the fragment: browsers never send it to a server
	// (no access logs, no Referer); the rider page reads it from there.
	q := url.Values{"trip": {id}, "access_token": {tok}}
	link := c.Scheme() + "://" + c.Request().Host + "/#" + q.Encode()
	return c.JSON(http.StatusCreated, shareReply{Share: sh, Token: tok, URL: link})
}

func (s *tripHandlers) revokeShare(c echo.Context) error {
	if err := s.shares.Revoke(c.Request().Context(), c.Param("id"), actor(c), c.Param("share")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// tripPath returns the breadcrumbs, thinned to ?limit= points if given.
func (s *tripHandlers) tripPath(c echo.Context) error {
	limit := 0
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "limit must be within [1, 10000]"}
		}
		limit = n
	}
	id := c.Param("id")
	pts, err := s.views.Path(c.Request().Context(), id, actor(c), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"trip_id": id, "points": pts})
}
