// Package pgtest gives a test a PostgreSQL schema of its own: the tests
// of every package that reaches PostgreSQL (the archive, the webhooks, the
// history routes, the server) share the machine's database and must not
// see each other's rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Default is the test PostgreSQL when HEXTRACK_TEST_DATABASE_URL is unset:
// the one this machine kind runs (trust auth, database "test").
const Default = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL creates a schema of its own in the test PostgreSQL
// (HEXTRACK_TEST_DATABASE_URL, or Default), drops it when the test ends,
// and returns a URL whose search_path is that schema. Unreachable: the
// test is skipped, or fails when CI=true.
func URL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("HEXTRACK_TEST_DATABASE_URL")
	if base == "" {
		base = Default
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", base)
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL is required in CI (HEXTRACK_TEST_DATABASE_URL or %s): %v", Default, err)
		}
		tb.Skipf("PostgreSQL unreachable (set HEXTRACK_TEST_DATABASE_URL): %v", err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	schema := "hx_test_" + hex.EncodeToString(r[:])
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("HEXTRACK_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
