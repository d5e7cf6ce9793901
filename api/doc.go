// Package api is hextrack's HTTP adapter: echo routes and middlewares,
// thin handlers, the JWT auth middleware, the long-poll transports, the
// one error→status table (error.go) and the OpenAPI contract
// (openapi.yaml).
//
// Server (server.go) builds one handler type per job, each holding only
// the deps it calls (tripHandlers, tripPolls, paymentHandlers,
// driverHandlers, driverSocket, opsHandlers, health, devTokens,
// roadsHandler), registers their routes and middlewares with echo's Group
// and Use, renders errors and drains. The SSE transport (api/sse), the
// driver WebSocket (api/driverws), the poll tag cache (api/pollcache) and
// the web pages (api/webpages) are packages of their own below api: api
// authenticates, passes them the caller explicitly and renders their
// errors.
//
// Handlers bind and validate input, make one call into a domain service
// and render; every error goes to the one HTTPErrorHandler. The services
// reach the handlers as small interfaces this package declares (deps.go:
// one group per handler file), which cmd fills with driver, trip, feed,
// dispatch, payment and ops values. api never reads env or flags (cmd
// does) and holds no state beyond open connections.
//
// api imports no Redis client: the shared rate limit is a Limiter (package
// ratelimit implements it), readiness a Pinger, and a Redis outage reaches
// the handlers as feed.ErrUnavailable (wrapped by feedredis.UnavailableHook),
// which the error table maps to 503 "unavailable".
package api
