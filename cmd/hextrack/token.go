package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/hextrack/hextrack/api"
)

// runToken mints a token with the configured secret:
// hextrack token --role driver --sub d1 --ttl 1h
func runToken(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	role := fs.String("role", "", "driver|rider|ops|viewer")
	sub := fs.String("sub", "", "subject (driver or rider id)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	trip := fs.String("trip", "", "trip id (viewer tokens)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret, err := readSecret("HEXTRACK_JWT_SECRET")
	if err != nil {
		return err
	}
	if secret == "" {
		return errors.New("set HEXTRACK_JWT_SECRET (or HEXTRACK_JWT_SECRET_FILE) to the server's secret")
	}
	tok, err := api.NewAuth([]byte(secret)).Mint(api.TokenRequest{Role: *role, Sub: *sub, TTL: *ttl, Trip: *trip})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
