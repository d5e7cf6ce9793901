package road

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/paulmach/osm"
	"github.com/paulmach/osm/osmpbf"

	"github.com/hextrack/hextrack/geo"
)

// LoadOSMFile loads the road graph of an OpenStreetMap PBF file.
func LoadOSMFile(path string) (*Graph, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("road: open map: %w", err)
	}
	defer f.Close()
	return LoadOSM(f)
}

// LoadOSM reads an OpenStreetMap PBF and builds the drivable road graph:
// highways cars may use (motorway … living_street, service roads other than
// parking aisles and driveways), one-way rules (oneway=yes/true/1/-1/reverse,
// roundabouts, motorways), free-flow speed from maxspeed or the road class,
// keeping only the largest strongly connected component so every node can
// reach every other.
//
// The input is read into memory and scanned twice (ways, then only the nodes
// they use); fine for city extracts, not meant for a country.
func LoadOSM(r io.Reader) (*Graph, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("road: read map: %w", err)
	}
	ctx := context.Background()

	type way struct {
		nodes    []osm.NodeID
		class    RoadClass
		speed    float64
		fwd, bwd bool
		name     string
	}
	var ways []way
	need := make(map[osm.NodeID]struct{})

	sc := osmpbf.New(ctx, bytes.NewReader(data), 1)
	sc.SkipNodes, sc.SkipRelations = true, true
	for sc.Scan() {
		w, ok := sc.Object().(*osm.Way)
		if !ok {
			continue
		}
		class, speed, fwd, bwd, ok := wayRules(w.Tags)
		if !ok || len(w.Nodes) < 2 {
			continue
		}
		ids := w.Nodes.NodeIDs()
		for _, id := range ids {
			need[id] = struct{}{}
		}
		ways = append(ways, way{ids, class, speed, fwd, bwd, w.Tags.Find("name")})
	}
	if err := sc.Err(); err != nil {
		sc.Close()
		return nil, fmt.Errorf("road: scan ways: %w", err)
	}
	sc.Close()
	if len(ways) == 0 {
		return nil, fmt.Errorf("road: map has no drivable roads")
	}

	// need is read by the decoder goroutines (FilterNode) during the node
	// scan, so the ids go into a separate map.
	idOf := make(map[osm.NodeID]int32, len(need))
	var b builder
	sc = osmpbf.New(ctx, bytes.NewReader(data), 1)
	sc.SkipWays, sc.SkipRelations = true, true
	sc.FilterNode = func(n *osm.Node) bool { _, ok := need[n.ID]; return ok }
	for sc.Scan() {
		n, ok := sc.Object().(*osm.Node)
		if !ok {
			continue
		}
		idOf[n.ID] = b.addNode(geo.Point{Lat: n.Lat, Lng: n.Lon})
	}
	if err := sc.Err(); err != nil {
		sc.Close()
		return nil, fmt.Errorf("road: scan nodes: %w", err)
	}
	sc.Close()

	var idx []int32
	for _, w := range ways {
		// Split where a node is missing from the extract (clipped ways).
		idx = idx[:0]
		b.name = w.name
		flush := func() {
			b.addWay(idx, w.class, w.speed, w.fwd, w.bwd)
			idx = idx[:0]
		}
		for _, id := range w.nodes {
			if n, ok := idOf[id]; ok {
				idx = append(idx, n)
			} else {
				flush()
			}
		}
		flush()
	}
	g := b.build(true)
	if g.NumNodes() == 0 {
		return nil, fmt.Errorf("road: map has no connected road network")
	}
	return g, nil
}

var highwayClass = map[string]RoadClass{
	"motorway": ClassMotorway, "motorway_link": ClassMotorway,
	"trunk": ClassTrunk, "trunk_link": ClassTrunk,
	"primary": ClassPrimary, "primary_link": ClassPrimary,
	"secondary": ClassSecondary, "secondary_link": ClassSecondary,
	"tertiary": ClassTertiary, "tertiary_link": ClassTertiary,
	"unclassified": ClassUnclassified, "road": ClassUnclassified,
	"residential":   ClassResidential,
	"service":       ClassService,
	"living_street": ClassLiving,
}

// wayRules decides whether a way is drivable and how: its class, free-flow
// speed (m/s) and allowed directions.
func wayRules(t osm.Tags) (class RoadClass, speed float64, fwd, bwd, ok bool) {
	hw := t.Find("highway")
	class, ok = highwayClass[hw]
	if !ok {
		return 0, 0, false, false, false
	}
	switch t.Find("access") {
	case "no", "private":
		return 0, 0, false, false, false
	}
	switch t.Find("motor_vehicle") {
	case "no", "private":
		return 0, 0, false, false, false
	}
	if t.Find("area") == "yes" {
		return 0, 0, false, false, false
	}
	if hw == "service" {
		switch t.Find("service") {
		case "parking_aisle", "driveway", "drive-through", "emergency_access":
			return 0, 0, false, false, false
		}
	}
	speed = class.DefaultSpeed()
	if strings.HasSuffix(hw, "_link") {
		speed *= 0.7
	}
	if v, ok := ParseMaxSpeed(t.Find("maxspeed")); ok {
		// A legal limit is a ceiling, and urban traffic rarely reaches it:
		// use 80% of it, never above the class default by more than half.
		speed = min(v*0.8, class.DefaultSpeed()*1.5)
	}
	speed = max(speed, 5/3.6)

	fwd, bwd = true, true
	jn := t.Find("junction")
	if hw == "motorway" || hw == "motorway_link" || jn == "roundabout" || jn == "circular" {
		bwd = false
	}
	switch t.Find("oneway") {
	case "yes", "true", "1":
		fwd, bwd = true, false
	case "-1", "reverse":
		fwd, bwd = false, true
	case "no", "false", "0":
		fwd, bwd = true, true
	}
	return class, speed, fwd, bwd, true
}

// ParseMaxSpeed parses an OSM maxspeed value ("50", "50 km/h", "30 mph",
// "PT:urban") into m/s.
func ParseMaxSpeed(s string) (float64, bool) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return 0, false
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	switch {
	case strings.HasSuffix(s, ":urban"):
		return 50 / 3.6, true
	case strings.HasSuffix(s, ":rural"):
		return 90 / 3.6, true
	case strings.HasSuffix(s, ":motorway"):
		return 120 / 3.6, true
	case strings.HasSuffix(s, ":living_street"), s == "walk":
		return 10 / 3.6, true
	}
	unit := 1 / 3.6
	if strings.HasSuffix(s, "mph") {
		unit = 1609.344 / 3600
		s = strings.TrimSuffix(s, "mph")
	} else {
		s = strings.TrimSuffix(s, "km/h")
		s = strings.TrimSuffix(s, "kmh")
		s = strings.TrimSuffix(s, "kph")
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v <= 0 || v > 200 {
		return 0, false
	}
	return v * unit, true
}
