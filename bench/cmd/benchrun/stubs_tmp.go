package main

import (
	"context"
	"errors"
	"io"
)

var errTodo = errors.New("not implemented yet")

func runSSEIdle(ctx context.Context, args []string, w io.Writer) error { return errTodo }
func runRiders(ctx context.Context, args []string, w io.Writer) error  { return errTodo }
func runIngest(ctx context.Context, args []string, w io.Writer) error  { return errTodo }
func (b *bench) scenarioIdleFanout(ctx context.Context) error          { return errTodo }
func (b *bench) scenarioIngest(ctx context.Context) error              { return errTodo }
