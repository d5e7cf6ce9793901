package feedredis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
)

// Unavailable reports whether err is Redis being unreachable or not
// serving: connection refused or reset, a timeout, the pool exhausted or
// closed, or a server that is LOADING, CLUSTERDOWN, TRYAGAIN, MASTERDOWN,
// READONLY (a replica after failover) or BUSY. Such an error is this node's
// trouble, not the request's: the client should retry, on another node if
// need be. redis.Nil and errors of a command itself (WRONGTYPE, a script's
// own error) are not.
func Unavailable(err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil):
		return false
	case errors.Is(err, feed.ErrUnavailable), errors.Is(err, redis.ErrClosed),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING ", "CLUSTERDOWN ", "TRYAGAIN ", "MASTERDOWN ", "READONLY ", "BUSY "} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
	}
	return false
}

// UnavailableHook is a go-redis hook (cmd adds it to the node's client)
// that wraps every error for which Unavailable holds with ErrUnavailable,
// keeping the original in the chain (errors.Is and errors.As still find
// it). Every domain package's Redis failure then reaches the api as
// ErrUnavailable, which its error table maps to 503 with Retry-After,
// without the api knowing Redis. Errors of a pipeline's commands are
// wrapped one by one (callers read them per command). Pub/sub connections
// bypass hooks: the hub reports their outages as ErrUnavailable itself.
type UnavailableHook struct{}

var _ redis.Hook = UnavailableHook{}

// wrapUnavailable returns err wrapped with ErrUnavailable when Unavailable
// holds and it is not wrapped yet.
func wrapUnavailable(err error) error {
	if err == nil || errors.Is(err, feed.ErrUnavailable) || !Unavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", feed.ErrUnavailable, err)
}

// DialHook passes dials through: their errors reach ProcessHook.
func (UnavailableHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook wraps a command's error.
func (UnavailableHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil {
			if w := wrapUnavailable(err); w != err {
				cmd.SetErr(w)
				return w
			}
		}
		return err
	}
}

// ProcessPipelineHook wraps the pipeline's error and each command's.
func (UnavailableHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil {
			return nil
		}
		for _, cmd := range cmds {
			if ce := cmd.Err(); ce != nil {
				if w := wrapUnavailable(ce); w != ce {
					cmd.SetErr(w)
				}
			}
		}
		return wrapUnavailable(err)
	}
}
