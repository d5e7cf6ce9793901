// Package tokens mints and verifies hextrack's JWTs: HS256 with one
// secret, exp required, a role (driver, rider, ops, viewer) and a subject,
// a trip for viewer tokens and an id (jti) for revocation. Verified tokens
// are cached by their exact string, so a client polling with one token
// pays one HMAC and decode, not one per request.
//
// api's middlewares authenticate with it; `hextrack token`, drivesim and
// the benchmark mint with it. It knows nothing of HTTP.
package tokens
