package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/internal/redistest"
)

// TestSecretChecks: outside dev mode the server refuses empty, short,
// placeholder or low-entropy JWT secrets and weak webhook secrets; in dev
// mode it makes a random one.
func TestSecretChecks(t *testing.T) {
	good := "k9Qz7x2LmP4vW8nR1tY6uB3cE5fH0jA2"
	tests := []struct {
		name    string
		dev     bool
		jwt     string
		webhook []string
		ok      bool
	}{
		{"good", false, good, nil, true},
		{"empty", false, "", nil, false},
		{"short", false, "k9Qz7x2LmP4vW8nR1tY6uB3cE5f", nil, false},
		{"compose default", false, "DEV-ONLY-jwt-secret-replace-me-0123456789", nil, false},
		{"changeme", false, "changeme-changeme-changeme-changeme", nil, false},
		{"low entropy", false, strings.Repeat("ab", 20), nil, false},
		{"good webhook", false, good, []string{"whsec_9f8e7d6c5b4a3928171605ab"}, true},
		{"short webhook", false, good, []string{"whsec_short"}, false},
		{"dev webhook outside dev", false, good, []string{devWebhookSecret}, false},
		{"compose webhook default", false, good, []string{"DEV-ONLY-change-me-webhook-secret"}, false},
		{"rotation: one good, one placeholder", false, good, []string{"whsec_9f8e7d6c5b4a3928171605ab", "example-webhook-secret-0123456789"}, false},
		{"dev: short allowed", true, "short", []string{"x"}, true},
		{"dev: empty becomes random", true, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{RedisURL: "redis://127.0.0.1:6379", Dev: tt.dev, JWTSecret: tt.jwt}
			c.Payment.WebhookSecrets = tt.webhook
			err := c.checkSecret()
			if (err == nil) != tt.ok {
				t.Fatalf("checkSecret: %v, want ok=%v", err, tt.ok)
			}
			if err != nil && (strings.Contains(err.Error(), tt.jwt) && tt.jwt != "") {
				t.Fatalf("the error shows the secret: %v", err)
			}
			if tt.ok && tt.jwt == "" && len(c.JWTSecret) < 32 {
				t.Fatalf("dev mode secret %q", c.JWTSecret)
			}
		})
	}
}

// TestSecretsFromFiles: *_FILE wins over the variable and is trimmed.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	jf, wf := filepath.Join(dir, "jwt"), filepath.Join(dir, "webhook")
	if err := os.WriteFile(jf, []byte("k9Qz7x2LmP4vW8nR1tY6uB3cE5fH0jA2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wf, []byte("whsec_new_9f8e7d6c5b4a392817,whsec_old_0a1b2c3d4e5f60718293\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HEXTRACK_JWT_SECRET", "ignored-when-a-file-is-given")
	t.Setenv("HEXTRACK_JWT_SECRET_FILE", jf)
	t.Setenv("HEXTRACK_PAYMENT_WEBHOOK_SECRETS_FILE", wf)
	rf := filepath.Join(dir, "redis")
	if err := os.WriteFile(rf, []byte("redis://default:pw-from-file@127.0.0.1:6379/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HEXTRACK_REDIS_URL_FILE", rf)
	c, err := parseServe(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisURL != "redis://default:pw-from-file@127.0.0.1:6379/0" || c.Dev {
		t.Fatalf("redis url %q (dev %v)", c.RedisURL, c.Dev)
	}
	if c.JWTSecret != "k9Qz7x2LmP4vW8nR1tY6uB3cE5fH0jA2" {
		t.Fatalf("jwt secret %q", c.JWTSecret)
	}
	if len(c.Payment.WebhookSecrets) != 2 || c.Payment.WebhookSecrets[1] != "whsec_old_0a1b2c3d4e5f60718293" {
		t.Fatalf("webhook secrets %q", c.Payment.WebhookSecrets)
	}
	if err := c.checkSecret(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HEXTRACK_JWT_SECRET_FILE", filepath.Join(dir, "missing"))
	if _, err := parseServe(nil); err == nil {
		t.Fatal("a missing secret file was accepted")
	}
}

// TestSecretsNeverLogged: a server started with real secrets (and a Redis
// URL with a password) logs none of them, at debug level.
func TestSecretsNeverLogged(t *testing.T) {
	redistest.MustOpen(t) // fails under CI when Redis is down
	jwt, wh, pass := "k9Qz7x2LmP4vW8nR1tY6uB3cE5fH0jA2", "whsec_9f8e7d6c5b4a3928171605ab", "p4ssw0rd-in-url"
	u := strings.Replace(redistest.URL(), "redis://", "redis://default:"+pass+"@", 1)
	cfg := Config{Addr: "127.0.0.1:0", RedisURL: u, JWTSecret: jwt, LogLevel: "debug", Prefix: redistest.Prefix(t)}
	cfg.Payment.WebhookSecrets = []string{wh}
	var logs bytes.Buffer
	m := NewMain(cfg, &logs)
	err := m.Run(context.Background())
	if err == nil {
		defer m.Close()
	}
	// With a password the test Redis may refuse AUTH; the start-up log
	// lines before the ping are what matter, and they are written.
	time.Sleep(50 * time.Millisecond)
	out := logs.String()
	if err != nil {
		out += err.Error()
	}
	for _, s := range []string{jwt, wh, pass} {
		if strings.Contains(out, s) {
			t.Fatalf("a secret reached the log:\n%s", out)
		}
	}
	if !strings.Contains(out, "redis") {
		t.Fatalf("nothing was logged, the check proves nothing:\n%s", out)
	}
}
