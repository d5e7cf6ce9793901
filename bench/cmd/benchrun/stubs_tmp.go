package main

import (
	"context"
	"errors"
	"io"
)

var errTodo = errors.New("not implemented yet")

func runIngest(ctx context.Context, args []string, w io.Writer) error { return errTodo }
func (b *bench) scenarioIngest(ctx context.Context) error             { return errTodo }
