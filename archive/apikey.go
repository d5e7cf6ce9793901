package archive

import (
	"fmt"
	"time"
)

// APIKey is a backend service's API key as the archive keeps it: never the
// secret, only its SHA-256 (package apikey makes and checks keys; this is
// its record). Zero times are "never" (no expiry, not revoked, not used).
type APIKey struct {
	// ID is the key's public id, also in the token (hx_<id>_<secret>).
	ID string
	// Name says whose key it is (free text, for ops).
	Name string
	// Hash is the hex SHA-256 of the key's secret.
	Hash string
	// Scopes are its grants (api/tokens.KnownScopes), at least one.
	Scopes    []string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time
	// LastUsedAt is when the key last authenticated a request, as recorded
	// by the verifier (coarse: at most one write a minute per key).
	LastUsedAt time.Time
}

// MaxAPIKeys bounds what one list of API keys returns: an archive holds a
// few keys per backend service, not thousands.
const MaxAPIKeys = 1000

// Validate checks what the store needs of a key: an id, a name of 1-200
// bytes, a hash, at least one scope and a creation time.
func (k APIKey) Validate() error {
	switch {
	case !ValidID(k.ID):
		return fmt.Errorf("%w: api key id must be 1-64 of [A-Za-z0-9_-]", ErrInvalid)
	case !validText(k.Name, 200):
		return fmt.Errorf("%w: api key %s: name must be 1-200 bytes of UTF-8", ErrInvalid, k.ID)
	case len(k.Hash) != 64:
		return fmt.Errorf("%w: api key %s: hash must be a hex SHA-256", ErrInvalid, k.ID)
	case len(k.Scopes) == 0:
		return fmt.Errorf("%w: api key %s: at least one scope", ErrInvalid, k.ID)
	case k.CreatedAt.IsZero():
		return fmt.Errorf("%w: api key %s: created_at is required", ErrInvalid, k.ID)
	}
	return nil
}
