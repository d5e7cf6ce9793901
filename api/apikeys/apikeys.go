package apikeys

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/apikey"
)

// Keys is what the routes call (apikey.Service).
type Keys interface {
	Create(ctx context.Context, r apikey.CreateRequest) (apikey.Created, error)
	List(ctx context.Context) ([]apikey.Key, error)
	Revoke(ctx context.Context, id string) error
}

// Routes are the /v1/apikeys routes.
type Routes struct {
	keys Keys
	log  *slog.Logger
}

// New returns the routes over keys (nil: every route is a 503), logging creations and revocations
// (never a token) to log (nil: slog.Default()).
func New(keys Keys, log *slog.Logger) *Routes {
	if log == nil {
		log = slog.Default()
	}
	return &Routes{keys: keys, log: log}
}

// Register adds the routes to e, for ops only.
func (r *Routes) Register(e *echo.Echo) {
	guard := caller.OpsOnly(func() error {
		if r.keys == nil {
			return apikey.ErrUnavailable // a node built without keys
		}
		return nil
	})
	e.POST("/v1/apikeys", guard(r.create))
	e.GET("/v1/apikeys", guard(r.list))
	e.DELETE("/v1/apikeys/:id", guard(r.revoke))
}

func (r *Routes) create(c echo.Context) error {
	var req apikey.CreateRequest
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("%w: body must be {\"name\", \"scopes\": [...], \"expires_in\"}: %w", apikey.ErrInvalid, err)
	}
	k, err := r.keys.Create(c.Request().Context(), req)
	if err != nil {
		return err
	}
	r.log.Info("api key created", "key", k.Key.ID, "name", k.Key.Name, "scopes", k.Key.Scopes,
		"expires_at", k.Key.ExpiresAt, "by", who(c))
	c.Response().Header().Set(echo.HeaderLocation, "/v1/apikeys/"+k.Key.ID)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store") // the token is shown once
	return c.JSON(http.StatusCreated, k)
}

func (r *Routes) list(c echo.Context) error {
	ks, err := r.keys.List(c.Request().Context())
	if err != nil {
		return err
	}
	if ks == nil {
		ks = []apikey.Key{}
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": ks})
}

func (r *Routes) revoke(c echo.Context) error {
	id := c.Param("id")
	if err := r.keys.Revoke(c.Request().Context(), id); err != nil {
		return err
	}
	r.log.Info("api key revoked", "key", id, "by", who(c))
	return c.NoContent(http.StatusNoContent)
}

// who names the caller in a log line: role and subject.
func who(c echo.Context) string {
	if cl := caller.From(c); cl != nil {
		return cl.Role + ":" + cl.Subject
	}
	return ""
}
