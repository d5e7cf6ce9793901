package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func (s *Server) mapRoutes() {
	s.e.GET("/v1/map/roads.geojson", s.roads)
}

var emptyRoads = []byte(`{"type":"FeatureCollection","features":[]}`)

// roads serves the road network as simplified GeoJSON for the web map. The
// X-Map-Source header says where it came from (osm, synthetic or none), so
// the page shows the OpenStreetMap attribution only for OSM data.
func (s *Server) roads(c echo.Context) error {
	body, source := emptyRoads, "none"
	if s.roadsGraph != nil {
		body, source = s.roadsGraph.GeoJSON(), s.mapSource
	}
	h := c.Response().Header()
	h.Set("X-Map-Source", source)
	h.Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, "application/geo+json", body)
}
