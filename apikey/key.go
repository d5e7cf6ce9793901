package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hextrack/hextrack/archive"
)

// Errors of API keys; api's error table maps each to a status.
var (
	// ErrRejected: the key cannot authenticate: malformed, unknown (or a
	// wrong secret), expired or revoked; the message says which (401).
	ErrRejected = errors.New("API key rejected")
	// ErrInvalid: a create request's name or expiry is malformed (400).
	ErrInvalid = errors.New("invalid API key request")
	// ErrInvalidScope: a scope that is not one of tokens.KnownScopes (400).
	ErrInvalidScope = errors.New("unknown scope")
	// ErrNotFound: no API key with that id (404).
	ErrNotFound = errors.New("no such API key")
	// ErrUnavailable: the archive that holds the keys does not answer
	// (503, retry).
	ErrUnavailable = errors.New("API keys cannot be read now")
)

// Prefix starts every API key, so that a bearer token is told from a JWT
// by its first bytes.
const Prefix = "hx_"

const (
	idBytes     = 8
	secretBytes = 32
)

// b32 is lowercase base32 without padding: URL- and header-safe, and its
// alphabet has no '_', the token's separator.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var (
	idLen     = b32.EncodedLen(idBytes)
	secretLen = b32.EncodedLen(secretBytes)
)

// IsKey reports whether a bearer token is meant as an API key (it starts
// with Prefix); whether it is a valid one is Verifier's to say.
func IsKey(token string) bool { return strings.HasPrefix(token, Prefix) }

// newToken returns a new key's id, its token and the hash of its secret.
func newToken() (id, token, hash string, err error) {
	var b [idBytes + secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", "", fmt.Errorf("api key: random: %w", err)
	}
	id, secret := b32.EncodeToString(b[:idBytes]), b32.EncodeToString(b[idBytes:])
	return id, Prefix + id + "_" + secret, hashSecret(secret), nil
}

// parse splits a token into its id and secret; ErrRejected when it is not
// hx_<id>_<secret> of the right lengths and alphabet.
func parse(token string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(token, Prefix)
	if ok {
		id, secret, ok = strings.Cut(rest, "_")
	}
	if !ok || len(id) != idLen || len(secret) != secretLen || !inAlphabet(id) || !inAlphabet(secret) {
		return "", "", fmt.Errorf("%w: malformed API key (want hx_<id>_<secret>)", ErrRejected)
	}
	return id, secret, nil
}

func inAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// hashSecret is what the archive keeps of a secret: its hex SHA-256.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// secretMatches compares secret with a stored hash in constant time.
func secretMatches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(hash)) == 1
}

// Key is an API key as ops see it: everything but the secret and its hash.
type Key struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// Status is "active", "expired" or "revoked" when the key was read.
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// Key statuses.
const (
	StatusActive  = "active"
	StatusExpired = "expired"
	StatusRevoked = "revoked"
)

// view is k as ops see it at now.
func view(k archive.APIKey, now time.Time) Key {
	v := Key{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Status: status(k, now), CreatedAt: k.CreatedAt,
		ExpiresAt: timePtr(k.ExpiresAt), RevokedAt: timePtr(k.RevokedAt), LastUsedAt: timePtr(k.LastUsedAt)}
	return v
}

// status is k's status at now.
func status(k archive.APIKey, now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return StatusRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StatusExpired
	}
	return StatusActive
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
