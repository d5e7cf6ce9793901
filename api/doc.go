// Package api is hextrack's HTTP adapter: echo routes, thin handlers, the
// JWT auth middleware, the transports (SSE, long-poll, WebSocket), the one
// error→status table (error.go) and the OpenAPI contract (openapi.yaml).
//
// Handlers bind and validate input, make one call into a domain package
// (driver, rider, eta, feed) and render; every error goes to the one
// HTTPErrorHandler. api never reads env or flags (cmd does) and holds no
// state beyond open connections.
package api
