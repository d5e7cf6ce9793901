package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/api/driverws"
	"github.com/hextrack/hextrack/api/sse"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/geo/road"
	"github.com/hextrack/hextrack/ops"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/trip"
)

// Deps are what the handlers call: small interfaces this package declares,
// one group per handler file, each naming only the methods its handlers
// use. The domain services (driverredis.Service, tripredis.Service and its
// Store, Shares and Chat, feedredis.Broker, dispatchredis.Commands,
// paymentredis.Service and Webhooks, opsredis.View) implement them; cmd
// wires them and checks each with a `var _ api.X = (*pkg.T)(nil)` line (Feed
// and Commands through small adapters: their Subscribe returns a concrete
// subscription). A nil field turns its routes off (503, or no check for
// Health and Limiter).
type Deps struct {
	// Health: /readyz and the stream gate (health.go).
	Health Pinger
	// Optional are the components the node serves without (name → check,
	// e.g. "archive"): /readyz names each one that fails as degraded and
	// stays 200; nothing else asks them (health.go).
	Optional map[string]Pinger
	// Limiter: the per-subject action bucket shared by the nodes (limits.go).
	Limiter Limiter

	// drivers.go (and the pings of the driver WebSocket, ws.go)
	Pings   Pings
	Drivers Drivers

	// trips.go (Trips also serves the driver WebSocket's trip actions)
	Trips     Trips
	TripViews TripViews
	Shares    Shares // also sse.go: a viewer's share is checked while it watches
	Chat      Chat

	// streams: sse.go, longpoll.go
	Feed      Feed
	Snapshots Snapshots

	// the driver command channel: ws.go, commands.go
	Commands     Commands
	CommandPolls CommandPolls
	Sessions     Sessions

	// payments.go; nil: 503
	Payments Payments
	Webhooks Webhooks

	// ops.go; nil: 503
	Ops Ops

	// Keys checks API keys (Authorization: Bearer hx_…, auth.go); nil:
	// API keys are refused (401).
	Keys Keys

	// Routes are route groups served from packages of their own (api/…),
	// registered after api's own routes; nil: none.
	Routes []Routes

	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Roads is the road graph drawn by the web map (nil: none); MapSource
	// says where it came from: "osm" or "synthetic".
	Roads     *road.Graph
	MapSource string
}

// Routes is a group of routes kept in a package of its own under api/
// (api stays under its size limit and each group has one job). Register
// adds its routes to e, guarding each with caller.Guard; the requests
// arrive authenticated (api/caller), and the errors its handlers return are
// domain sentinels mapped by api's one error table (error.go).
type Routes interface {
	Register(e *echo.Echo)
}

// OwnBodies is implemented by a Routes group whose routes take bodies
// larger than Config.MaxBody (file uploads): the global body limit skips
// the routes it names (echo paths, e.g. "/v1/trips/:id/stops/:stop_id/proof/:kind"),
// whose handlers bound their bodies themselves (http.MaxBytesReader).
type OwnBodies interface {
	OwnBodyRoutes() []string
}

// Keys verifies an API key into the claims of a service caller
// (apikey.Verifier): apikey.ErrRejected (401) saying why, or
// apikey.ErrUnavailable (503).
type Keys interface {
	Verify(ctx context.Context, token string, into *tokens.Claims) error
}

// Limiter charges a request to a bucket shared by every node (the
// per-subject action limit, limits.go). cmd passes a *ratelimit.Bucket;
// api does not import package ratelimit (it is go-redis).
type Limiter interface {
	// Take returns 0 when key's bucket (refilled at rate/s up to burst)
	// paid cost, else how long until it could; an error lets the request
	// through.
	Take(ctx context.Context, key string, rate float64, burst, cost int) (time.Duration, error)
}

// Pings ingests driver pings (drivers.go, ws.go); SetMetrics gives it the
// api's ping counters.
type Pings interface {
	Ingest(ctx context.Context, driverID string, pings []driver.DecodedPing) (driver.IngestResult, error)
	Limits() driver.Limits
	SetMetrics(m driver.Metrics)
}

// Drivers reads and sets driver state (drivers.go, ws.go; IsSuspended:
// the driver WebSocket's refusal of a driver ops suspended).
type Drivers interface {
	SetStatus(ctx context.Context, driverID, status string) (driver.State, error)
	Get(ctx context.Context, driverID string) (driver.State, error)
	Nearby(ctx context.Context, q driver.NearbyQuery) ([]driver.Nearby, error)
	IsSuspended(ctx context.Context, driverID string) (bool, error)
}

// Trips are the trip lifecycle commands (trips.go; Accept and Act also
// from the driver WebSocket, ws.go). Four methods: one per kind of change
// a client asks for.
type Trips interface {
	Create(ctx context.Context, a trip.Actor, idemKey string, r trip.CreateRequest) (trip.Snapshot, bool, error)
	Accept(ctx context.Context, id string, a trip.Actor) (trip.Snapshot, error)
	Act(ctx context.Context, id string, a trip.Actor, action, reason string) (trip.Snapshot, error)
	ChangeDropoff(ctx context.Context, id string, a trip.Actor, p trip.Place, ifMatch int64) (trip.Snapshot, error)
}

// TripViews are the reads of the trip routes (trips.go).
type TripViews interface {
	SnapshotTag(ctx context.Context, id string, a trip.Actor) (etag, status string, err error)
	Authorize(ctx context.Context, id string, a trip.Actor) (trip.Trip, error)
	Path(ctx context.Context, id string, a trip.Actor, limit int) ([]trip.Crumb, error)
}

// Shares are a trip's share links (trips.go, sse.go).
type Shares interface {
	Share(ctx context.Context, id string, a trip.Actor, ttl time.Duration) (trip.Share, error)
	Revoke(ctx context.Context, id string, a trip.Actor, shareID string) error
	CheckShare(ctx context.Context, id, shareID string) error
}

// Chat posts a trip's messages (trips.go).
type Chat interface {
	PostMessage(ctx context.Context, id string, a trip.Actor, r trip.MessageRequest) (trip.Posted, error)
}

// Feed is a trip's event feed: live (sse.go) and long-polled (longpoll.go).
// Its subscriptions are api/sse's (cmd adapts feedredis.Broker, whose
// Subscribe returns its concrete *Subscription).
type Feed interface {
	Subscribe(ctx context.Context, topic, lastID string) (sse.Subscription, error)
	Wait(ctx context.Context, topic, afterID string, limit int, d time.Duration) ([]feed.Event, string, error)
}

// Snapshots are what a stream starts from and resets to (sse.go,
// longpoll.go, trips.go).
type Snapshots interface {
	Snapshot(ctx context.Context, id string, a trip.Actor) (trip.Snapshot, error)
	LocationOf(ctx context.Context, id string) (*trip.Location, error)
}

// Commands are a driver's commands: where to resume, live delivery and
// acks, for either transport (ws.go, commands.go). Its subscriptions are
// api/driverws's (cmd adapts dispatch.Commands).
type Commands interface {
	ResumeFrom(ctx context.Context, driverID, lastID string) (string, error)
	Subscribe(ctx context.Context, driverID, after string) (driverws.Subscription, error)
	Ack(ctx context.Context, driverID, id string) (string, error)
}

// CommandPolls is the long-poll transport of the commands (commands.go).
type CommandPolls interface {
	Poll(ctx context.Context, driverID, after string, limit int, wait time.Duration) ([]feed.Event, string, error)
	Position(ctx context.Context, driverID string) (string, error)
}

// Sessions keep one live WebSocket per driver across nodes (ws.go).
type Sessions interface {
	TakeSession(ctx context.Context, driverID, session string) (string, error)
	Session(ctx context.Context, driverID string) (string, error)
	EndSession(ctx context.Context, driverID, session string)
}

// Payments are a delivery's online payment (payments.go).
type Payments interface {
	Create(ctx context.Context, tripID string, a trip.Actor, returnURL string) (payment.Payment, bool, error)
	Get(ctx context.Context, id string, a trip.Actor) (payment.Payment, error)
	Tag(ctx context.Context, id string, a trip.Actor) (etag string, final bool, err error)
}

// Webhooks are the payment gateway's door (payments.go).
type Webhooks interface {
	Webhook(ctx context.Context, header string, body []byte) (payment.WebhookResult, error)
}

// Ops are the ops dashboard's views (ops.go): one per panel of one page.
type Ops interface {
	Summary(ctx context.Context) (*ops.Summary, error)
	Supply(ctx context.Context, res int, within ops.CellSet) ([]ops.SupplyCell, error)
	Trips(ctx context.Context, status string, limit int) ([]trip.Trip, error)
	Drivers(ctx context.Context, within ops.CellSet, max int) ([]ops.FleetDriver, bool, error)
}

// driverService is Pings and Drivers together: what the driver handlers
// (drivers.go) and the driver WebSocket (ws.go) call.
type driverService interface {
	Pings
	Drivers
}

// driverCommands is Commands and Sessions together: what the driver
// channel (ws.go, commands.go) calls.
type driverCommands interface {
	Commands
	Sessions
}
