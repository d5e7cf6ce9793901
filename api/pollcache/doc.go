// Package pollcache is a node's short-lived memory of the validators
// (ETags) that polls of a trip or a payment were answered with, per
// caller, so that a poll whose If-None-Match still matches is answered
// 304 without a data store read, and never from a tag older than the
// cache's ttl (see Cache for the guarantee).
//
// It holds no domain knowledge and must not import api, the domain
// packages or any Redis client: api's trip and payment handlers put, get
// and forget tags.
package pollcache
