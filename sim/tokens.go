package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hextrack/hextrack/client"
)

// Tokens mints bearer tokens for simulated drivers and riders: locally with
// the server's HS256 secret when one is given, else through the dev-mode
// endpoint POST /v1/dev/token.
type Tokens struct {
	Anon   *client.Client // no token
	Secret []byte         // optional
	TTL    time.Duration  // zero: 24h
}

// Mint returns a token for role and sub.
func (t Tokens) Mint(ctx context.Context, role, sub string) (string, error) {
	ttl := t.TTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	if len(t.Secret) > 0 {
		now := time.Now()
		c := jwt.MapClaims{"sub": sub, "role": role, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
		return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.Secret)
	}
	tok, err := t.Anon.DevToken(ctx, role, sub, ttl)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return "", fmt.Errorf("the server at %s is not in dev mode (POST /v1/dev/token is 404): pass --secret with its HEXTRACK_JWT_SECRET", t.Anon.BaseURL())
	}
	return tok, err
}

// CheckServer makes sure url is a reachable hextrack server and that a
// token minted by t is accepted, with errors a person can act on.
func CheckServer(ctx context.Context, t Tokens) error {
	c := t.Anon
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, status, err := c.Do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
	if err != nil {
		var ne net.Error
		var ae *client.Error
		switch {
		case errors.As(err, &ae):
			return fmt.Errorf("%s does not look like a hextrack server (GET /healthz: %d)", c.BaseURL(), ae.Status)
		case errors.As(err, &ne):
			return fmt.Errorf("cannot reach the server at %s: %w", c.BaseURL(), err)
		}
		return fmt.Errorf("cannot reach the server at %s: %w", c.BaseURL(), err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s does not look like a hextrack server (GET /healthz: %d)", c.BaseURL(), status)
	}
	tok, err := t.Mint(ctx, "driver", "drivesim-check")
	if err != nil {
		return err
	}
	_, err = c.WithToken(tok).GetDriver(ctx, "drivesim-check")
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		return fmt.Errorf("the server rejected our token (%s): check --secret", ae.Message)
	}
	if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusNotFound) {
		return fmt.Errorf("checking the token: %w", err)
	}
	return nil
}
