package main

import (
	"context"
	"errors"
	"io"
)

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("replay: not yet")
}
