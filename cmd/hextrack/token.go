package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hextrack/hextrack/api/tokens"
)

// runToken mints a token with the configured secret:
// hextrack token --role driver --sub d1 --ttl 1h
func runToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "driver|rider|ops|viewer")
	sub := fs.String("sub", "", "subject (driver or rider id)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	trip := fs.String("trip", "", "trip id (viewer tokens)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: hextrack token --role ROLE [--sub ID] [--trip ID] [--ttl 1h]\n\n"+
			"Token prints an access token (JWT, HS256) signed with the server's secret,\n"+
			"read from HEXTRACK_JWT_SECRET or the file named by HEXTRACK_JWT_SECRET_FILE.\n"+
			"Like the server, it refuses a secret shorter than 32 random characters\n"+
			"(unless HEXTRACK_DEV=1, where the server accepts one).\n\nFlags:\n")
		fs.PrintDefaults()
	}
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
	// The server's own rule (Config.checkSecret): a token signed with a
	// secret it would refuse to start with is no use to anyone.
	if weakSecret(secret) && os.Getenv("HEXTRACK_DEV") != "1" {
		return errors.New("HEXTRACK_JWT_SECRET is too weak: the server requires at least 32 random characters " +
			"(no placeholder, at least 10 distinct characters) outside dev mode, so it would refuse this token; " +
			"use the server's secret, e.g. one made with: openssl rand -hex 32")
	}
	tok, err := tokens.NewAuth([]byte(secret)).Mint(tokens.Request{Role: *role, Sub: *sub, TTL: *ttl, Trip: *trip})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
