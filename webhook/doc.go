// Package webhook is outbound webhooks' domain: endpoints (Endpoint, its
// Status, its Secret that never prints or logs), the event-type Filter
// over the one list of deliverable types (EventTypes: the durable events
// of a trip's feed, taken from trip, dispatch and payment), the delivery
// Policy that keeps deliveries off loopback, private, link-local and
// cloud-metadata addresses (SSRF), the Sender that posts signed
// deliveries under it, and the Service behind the routes (api/webhooks).
//
// # A delivery
//
// POST <endpoint url>, Content-Type application/json, the body the feed's
// envelope of the event ({"id","type","topic","ts","data"}, as SSE and the
// NATS export send it), signed as Standard Webhooks says, with the kept
// library (github.com/standard-webhooks/standard-webhooks/libraries/go):
//
//	webhook-id:        <topic>/<event id>   e.g. trip:t_1/1800000000000-3
//	webhook-timestamp: <unix seconds of this attempt>
//	webhook-signature: v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>
//
// The secret is "whsec_<base64 of 32 random bytes>"; the HMAC key is the
// decoded bytes (the library's rule, so its verifiers in every language
// check it). webhook-id is the event ID qualified by its topic: a feed
// event ID is unique only within its topic, and receivers deduplicate on
// webhook-id, so a bare ID could make one trip's event look like a replay
// of another's. A retry or a replay keeps the webhook-id. A 2xx answer is
// success; anything else, a timeout (10 s) or a refusal by the policy is
// a failed attempt. At most 4 KiB of the answer is read and kept in the
// delivery log; redirects are followed (at most 3), each checked.
//
// # Where deliveries may go (Policy)
//
// Checked when an endpoint is created or changed (CheckURL, resolving its
// name: a clear ErrURLNotAllowed saying which address and why), and again
// at every delivery on the addresses actually dialled, through the
// transport's dialer (its Control hook runs before connect, after DNS
// resolution, so a name that later resolves to a private address — DNS
// rebinding — never reaches it) and on every redirect. Environment
// proxies are not used. Outside dev mode only https, and no loopback or
// private address unless the allow-list (--webhook-allow-hosts) names the
// host, its address or a prefix holding it; in dev mode plain http to
// loopback is allowed too; link-local (169.254/16, fe80::/10) and the
// known metadata addresses and names are refused always.
//
// How deliveries are queued, ordered, retried, paused and replayed is
// webhook/webhookriver's doc; the tables are webhook/webhooksql's.
//
// webhook imports feed, trip, dispatch and payment (event types) and the
// Standard Webhooks library; never api, echo, a database driver, River or
// a Redis client.
package webhook
