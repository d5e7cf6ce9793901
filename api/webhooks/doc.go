// Package webhooks serves the webhook endpoints' routes (an api.Routes
// wired by cmd/hextrack), each guarded by caller.RequireScope
// ("webhooks:manage": ops, or an API key holding that scope):
//
//	POST   /v1/webhooks/endpoints                 create; the answer holds the secret, once
//	GET    /v1/webhooks/endpoints                 list (never a secret)
//	GET    /v1/webhooks/endpoints/{id}            one
//	PATCH  /v1/webhooks/endpoints/{id}            url, filter, enabled (true resumes a paused one)
//	DELETE /v1/webhooks/endpoints/{id}            with its delivery log
//	GET    /v1/webhooks/endpoints/{id}/deliveries the delivery log, newest first, paged
//	POST   /v1/webhooks/endpoints/{id}/replay     {"from_event": …} or {"from_time": …}
//
// Handlers bind, call webhook.Service and render; errors are the webhook
// package's sentinels, mapped by api's one error table. It imports
// webhook, api/caller and echo; never api, sqlstore or River.
package webhooks
