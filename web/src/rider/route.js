// The route line on the rider map: the driver's way to the pickup (dashed)
// and the trip from pickup to dropoff (solid), along the map's roads when
// the page has them (shortest path over /v1/map/roads.geojson), as
// straight legs otherwise. The driver's leg is recomputed at most every
// few seconds as the car moves.
import { L } from '../lib/map.js';
import { RoadGraph } from '../lib/roads.js';

const LEG_MS = 4000;

export class RouteLine {
  constructor(map) {
    this.map = map;
    this.graph = null;
    this.trip = L.polyline([], { className: 'route-trip', color: '#0b57d0', weight: 5, opacity: 0.8, interactive: false }).addTo(map);
    this.approach = L.polyline([], { className: 'route-approach', color: '#0b57d0', weight: 4, opacity: 0.7, dashArray: '6 8', interactive: false }).addTo(map);
    this.key = '';
    this.legAt = 0;
  }

  // useRoads gives the road GeoJSON; routes are drawn along it from then on.
  useRoads(gj) {
    if (!gj || !(gj.features || []).length) return;
    this.graph = new RoadGraph(gj);
    this.key = '';
  }

  // path is the way from a to b: road nodes between the two points, or
  // the straight leg.
  path(a, b) {
    const nodes = this.graph && this.graph.size ? this.graph.path(a, b) : null;
    const pts = nodes && nodes.length ? [a, ...nodes, b] : [a, b];
    return pts.map((p) => [p.lat, p.lng]);
  }

  // show draws the trip leg (pickup → dropoff) and, when a car is coming
  // to the pickup, its approach leg. Missing points clear the legs.
  show({ pickup, dropoff, car, toPickup }) {
    const key = pickup && dropoff ? `${pickup.lat},${pickup.lng}>${dropoff.lat},${dropoff.lng}:${!!this.graph}` : '';
    if (key !== this.key) {
      this.key = key;
      this.trip.setLatLngs(key ? this.path(pickup, dropoff) : []);
    }
    if (!(car && toPickup && pickup)) {
      this.approach.setLatLngs([]);
      return;
    }
    const now = Date.now();
    if (now - this.legAt < LEG_MS && this.approach.getLatLngs().length) return;
    this.legAt = now;
    this.approach.setLatLngs(this.path(car, pickup));
  }

  clear() {
    this.key = '';
    this.trip.setLatLngs([]);
    this.approach.setLatLngs([]);
  }

  // points, for tests: how many vertices each leg has.
  get points() {
    return { trip: this.trip.getLatLngs().length, approach: this.approach.getLatLngs().length };
  }
}
