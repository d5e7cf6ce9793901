// Package apikey is backend services' API keys: the token format, making
// keys (Service: create, list, revoke, over the Store it declares) and
// checking them on every request (Verifier).
//
// A key is shown once, at creation, as hx_<id>_<secret>: id is 8 random
// bytes and secret 32 (256 bits), both lowercase base32 without padding.
// The archive keeps the id, a name, the scopes, the times (created,
// expires, revoked, last used) and the hex SHA-256 of the secret, never
// the secret: a fast hash is right for a 256-bit random secret (nothing to
// brute-force), and the comparison is constant-time.
//
// The Verifier turns a key into the claims of a service caller
// (tokens.RoleService, Subject = key id, Scopes = its scopes) for api's
// authenticating middleware. It caches what it read of a key for
// VerifierConfig.CacheTTL (5 s): a key revoked on one node stops working
// on every node within that time (at once on the node that revoked it). A
// key's last-used time is written at most once per VerifierConfig.TouchEvery
// (1 min) per key and node, by the request that finds it due, so a busy
// key costs one archive write a minute, not one per request. An archive
// that does not answer refuses keys with ErrUnavailable (503): a key is
// never let through unchecked.
//
// The scopes are api/tokens' (tokens.KnownScopes); a request naming any
// other is ErrInvalidScope. apikey imports archive (the record) and
// api/tokens (claims, scopes) and must not import api, api/caller, echo,
// archive/sqlstore or any domain package.
package apikey
