package main

// This file belongs to the ETA engineer, who replaces it with the real
// eta-eval command; it exists only so main.go compiles meanwhile.

import (
	"context"
	"errors"
	"io"
)

func runETAEval(ctx context.Context, args []string, stdout io.Writer) error {
	return errors.New("eta-eval: not built yet")
}
