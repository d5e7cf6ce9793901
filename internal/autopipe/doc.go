// Package autopipe is the one leader/follower auto-pipeline of hextrack:
// Pipe groups the Redis work of concurrent callers into pipelines with no
// goroutine of its own (a lone call is sent at once; under load the
// pipeline that finishes hands the queue to the next leader), and bounds
// the work in flight. driver uses it for ingest scripts and index updates;
// Cmds, a Pipe of plain commands, serves the polls' HMGETs of trip and
// payment.
//
// go-redis v9.22+ has an experimental AutoPipeline (blocking and async
// faces). It batches plain commands only: it cannot batch domain work such
// as driver's index updates (one georedis.Index.UpdateMany per batch), and its
// bound (MaxQueuedCommands) rejects instead of making a flood wait.
//
// It imports only go-redis; it knows nothing of trips, drivers or feeds.
package autopipe
