// Package autopipe sends the small Redis commands of concurrent callers as
// shared pipelines (leader/follower, no goroutine of its own): under load a
// command costs a fraction of a round trip; a lone command is sent at once.
//
// It imports only go-redis; it knows nothing of trips, drivers or feeds.
package autopipe
