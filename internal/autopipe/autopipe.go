package autopipe

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Cmds sends the small commands of concurrent callers (the HMGETs of
// polls: tripredis.Store.SnapshotTag, paymentredis.Service.Tag) to Redis through a
// Pipe of *redis.Cmd: under many concurrent pollers a poll costs a
// fraction of a round trip's syscalls on both sides instead of a whole
// one; a lone command is sent at once (no waiting to fill a batch). Every
// command is sent after its request arrived: a batch is never a cache.
type Cmds struct {
	rdb  redis.UniversalClient
	pipe *Pipe[*redis.Cmd]
	// piped counts the commands sent in pipelines of more than one.
	piped atomic.Int64
}

// cmdsInflight bounds the commands in flight: two pipelines of up to 128.
const cmdsInflight = 256

// NewCmds returns a Cmds sending to rdb.
func NewCmds(rdb redis.UniversalClient) *Cmds {
	c := &Cmds{rdb: rdb}
	c.pipe = New(cmdsInflight, c.send)
	return c
}

// send is the pipe's send: one command alone, more as one pipeline.
func (c *Cmds) send(ctx context.Context, cmds []*redis.Cmd) {
	if len(cmds) == 1 {
		_ = c.rdb.Process(ctx, cmds[0])
		return
	}
	c.piped.Add(int64(len(cmds)))
	p := c.rdb.Pipeline()
	for _, cmd := range cmds {
		_ = p.Process(ctx, cmd)
	}
	_, _ = p.Exec(ctx) // each command carries its own error
}

// Do runs one command (args as for redis.Client.Do) in the next pipeline
// and returns it with its reply or error. The command is not abandoned
// when ctx ends (a poll is cheap, and its reply is what the client's retry
// would ask for); the client's read and write timeouts bound it.
func (c *Cmds) Do(ctx context.Context, args ...any) *redis.Cmd {
	ctx = context.WithoutCancel(ctx)
	cmd := redis.NewCmd(ctx, args...)
	if err := c.pipe.Do(ctx, cmd); err != nil {
		cmd.SetErr(err) // not reached: a context without cancellation never ends
	}
	return cmd
}

// HMGetArgs returns an HMGET command's arguments with a nil slot for the
// key (index 1): a caller boxes its fields once and copies the template
// per read.
func HMGetArgs(fields ...string) []any {
	args := make([]any, 0, 2+len(fields))
	args = append(args, "hmget", nil)
	for _, f := range fields {
		args = append(args, f)
	}
	return args
}

// HMGet runs an HMGET built from template (HMGetArgs) on key, batched
// with concurrent reads, and puts the values in into, "" for absent
// fields.
func (c *Cmds) HMGet(ctx context.Context, template []any, key string, into []string) error {
	args := make([]any, len(template))
	copy(args, template)
	args[1] = key
	vals, err := c.Do(ctx, args...).Slice()
	if err != nil {
		return err
	}
	if len(vals) != len(into) {
		return fmt.Errorf("HMGET: %d values for %d fields", len(vals), len(into))
	}
	for i, v := range vals {
		into[i], _ = v.(string)
	}
	return nil
}
