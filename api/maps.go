package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/geo/road"
)

func (s *Server) mapRoutes() {
	s.e.GET("/v1/map/roads.geojson", s.roads.roads)
}

// roadsHandler serves the road graph drawn by the web map.
type roadsHandler struct {
	graph  *road.Graph // nil: none
	source string      // "osm" or "synthetic"
}

var emptyRoads = []byte(`{"type":"FeatureCollection","features":[]}`)

// roads serves the road network as simplified GeoJSON for the web map. The
// X-Map-Source header says where it came from (osm, synthetic or none), so
// the page shows the OpenStreetMap attribution only for OSM data.
func (rh *roadsHandler) roads(c echo.Context) error {
	body, source := emptyRoads, "none"
	if rh.graph != nil {
		body, source = rh.graph.GeoJSON(), rh.source
	}
	h := c.Response().Header()
	h.Set("X-Map-Source", source)
	h.Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, "application/geo+json", body)
}
