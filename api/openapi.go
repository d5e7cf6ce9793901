package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

//go:embed openapi.yaml
var openapiSpec []byte

// OpenAPI returns the API contract served at /openapi.yaml.
func OpenAPI() []byte { return openapiSpec }

func serveOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", openapiSpec)
}
