package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestHelp: help in the style of the go tool: every way of asking lists
// the commands or a command's flags, and is not an error.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // in stdout+stderr
	}{
		{[]string{"help"}, []string{"serve", "migrate", "token", "eta-eval", "eta-train", "version", "hextrack <command> --help"}},
		{[]string{"--help"}, []string{"serve", "token", "eta-eval", "version"}},
		{[]string{"-h"}, []string{"The commands are"}},
		{[]string{"help", "token"}, []string{"usage: hextrack token", "-role"}},
		{[]string{"token", "--help"}, []string{"usage: hextrack token", "32 random characters", "-ttl"}},
		{[]string{"eta-eval", "--help"}, []string{"usage: hextrack eta-eval", "Porto", "NYC", "never saw", "-trips"}},
		{[]string{"help", "eta-eval"}, []string{"usage: hextrack eta-eval", "-model"}},
		{[]string{"eta-train", "--help"}, []string{"usage: hextrack eta-train", "--eta-model", "fingerprint", "-trips", "-out"}},
		{[]string{"help", "eta-train"}, []string{"usage: hextrack eta-train"}},
		{[]string{"help", "eta-model"}, []string{"usage: hextrack eta-model show", "rollback", "previous.model", "-dir"}},
		{[]string{"eta-model", "rollback", "--help"}, []string{"usage: hextrack eta-model", "-data-dir"}},
		{[]string{"serve", "--help"}, []string{"usage: hextrack serve"}}, // its flags go to os.Stderr (parseServe)
		{[]string{"help", "serve"}, []string{"usage: hextrack serve"}},
		{[]string{"help", "version"}, []string{"The commands are"}},
		{[]string{"migrate", "--help"}, []string{"usage: hextrack migrate", "-database-url", "-data-dir", "HEXTRACK_DATABASE_URL"}},
		{[]string{"help", "migrate"}, []string{"usage: hextrack migrate", "advisory lock"}},
		{[]string{"help"}, []string{"apikey", "API keys of backend services"}},
		{[]string{"help", "apikey"}, []string{"usage: hextrack apikey create", "--expires", "within 5 s", "-scopes", "-database-url"}},
		{[]string{"apikey", "create", "--help"}, []string{"usage: hextrack apikey", "trips:read, webhooks:manage, ops"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			if err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("err = %v, want none or flag.ErrHelp (exit 0)", err)
			}
			out := stdout.String() + stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bogus"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "hextrack help") {
		t.Fatalf("err = %v, want it to point at hextrack help", err)
	}
}

// TestTokenRefusesWeakSecret: the token command applies the server's rule
// (32+ random characters outside dev mode) instead of minting a token the
// server would refuse.
func TestTokenRefusesWeakSecret(t *testing.T) {
	args := []string{"token", "--role", "driver", "--sub", "d1"}
	for _, tc := range []struct {
		name, secret, dev string
		ok                bool
	}{
		{"short", "short", "", false},
		{"placeholder", "changeme-changeme-changeme-changeme", "", false},
		{"good", "k9Qz7x2LmP4vW8nR1tY6uB3cE5fH0jA2", "", true},
		{"short in dev mode", "short", "1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HEXTRACK_JWT_SECRET", tc.secret)
			t.Setenv("HEXTRACK_JWT_SECRET_FILE", "")
			t.Setenv("HEXTRACK_DEV", tc.dev)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, &stdout, &stderr)
			if tc.ok {
				if err != nil || strings.Count(stdout.String(), ".") != 2 {
					t.Fatalf("err = %v, stdout %q: want a token", err, stdout.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "32 random characters") || stdout.Len() != 0 {
				t.Fatalf("err = %v, stdout %q: want a refusal naming the rule and no token", err, stdout.String())
			}
		})
	}
}
