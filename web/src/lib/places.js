// Street names for points: a reverse lookup over the map's own roads
// (/v1/map/roads.geojson, whose features carry the OSM "name"), so the
// pages show "Rua de Santa Catarina" instead of raw coordinates without
// asking any outside geocoder.
import { distance } from './geo.js';

// How far a point may be from a street for the street to name it.
const NEAR_M = 80;
// A second street this close makes the place a corner ("A / B").
const CORNER_M = 35;

export class Streets {
  // gj is the roads GeoJSON; roads without a name are skipped.
  constructor(gj) {
    this.segs = [];
    this.cell = 0.002; // degrees: a grid of ~200 m buckets
    this.grid = new Map();
    for (const f of (gj && gj.features) || []) {
      const name = f.properties && f.properties.name;
      const g = f.geometry;
      if (!name || !g || g.type !== 'LineString') continue;
      const c = g.coordinates;
      for (let i = 0; i + 1 < c.length; i++) {
        const s = { name, a: { lat: c[i][1], lng: c[i][0] }, b: { lat: c[i + 1][1], lng: c[i + 1][0] } };
        for (const k of this.keys(s)) {
          if (!this.grid.has(k)) this.grid.set(k, []);
          this.grid.get(k).push(s);
        }
      }
    }
  }

  get size() { return this.grid.size; }

  keys(s) {
    const x0 = Math.floor(Math.min(s.a.lng, s.b.lng) / this.cell);
    const x1 = Math.floor(Math.max(s.a.lng, s.b.lng) / this.cell);
    const y0 = Math.floor(Math.min(s.a.lat, s.b.lat) / this.cell);
    const y1 = Math.floor(Math.max(s.a.lat, s.b.lat) / this.cell);
    const out = [];
    for (let x = x0; x <= x1; x++) for (let y = y0; y <= y1; y++) out.push(`${x},${y}`);
    return out;
  }

  // nearest returns the named streets within NEAR_M of p, closest first,
  // one entry per name: [{name, m}].
  nearest(p) {
    const x = Math.floor(p.lng / this.cell);
    const y = Math.floor(p.lat / this.cell);
    const best = new Map();
    for (let dx = -1; dx <= 1; dx++) {
      for (let dy = -1; dy <= 1; dy++) {
        for (const s of this.grid.get(`${x + dx},${y + dy}`) || []) {
          const m = segDistance(p, s.a, s.b);
          if (m <= NEAR_M && !(best.get(s.name) <= m)) best.set(s.name, m);
        }
      }
    }
    return [...best].map(([name, m]) => ({ name, m })).sort((a, b) => a.m - b.m);
  }

  // address is a short place name for p ("Rua A" or, at a corner,
  // "Rua A / Rua B"), or "" when no named street is near.
  address(p) {
    const n = this.nearest(p);
    if (!n.length) return '';
    if (n.length > 1 && n[1].m <= CORNER_M) return `${n[0].name} / ${n[1].name}`;
    return n[0].name;
  }
}

// segDistance is the distance in meters from p to segment ab (a local
// flat projection: fine over a few hundred meters).
function segDistance(p, a, b) {
  const k = Math.cos((p.lat * Math.PI) / 180);
  const ax = (a.lng - p.lng) * k;
  const ay = a.lat - p.lat;
  const bx = (b.lng - p.lng) * k;
  const by = b.lat - p.lat;
  const dx = bx - ax;
  const dy = by - ay;
  const len = dx * dx + dy * dy;
  let t = len > 0 ? -(ax * dx + ay * dy) / len : 0;
  t = Math.max(0, Math.min(1, t));
  const q = { lat: p.lat + ay + t * dy, lng: p.lng + (ax + t * dx) / k };
  return distance(p, q);
}
