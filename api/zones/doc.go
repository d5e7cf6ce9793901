// Package zones serves the ops zone routes (api.Routes): create, list,
// read, change and delete zones from GeoJSON (/v1/zones), who is inside a
// zone (/v1/zones/{id}/drivers) and a zone's events as an SSE stream
// resumed by Last-Event-ID (/v1/zones/{id}/events). Ops tokens only.
// Handlers are thin: bind, one service call, render; errors are zone's
// sentinels, mapped by api's error table.
//
// It imports zone, feed and the api helpers (caller, sse, tokens); never
// go-redis or zoneredis.
package zones
