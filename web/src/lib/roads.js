// A routable graph built in the browser from /v1/map/roads.geojson, for the
// driver page's simulated drive: nodes are shared coordinates, edges the
// line segments (oneway respected), shortest paths by Dijkstra.
import { distance } from './geo.js';

export class RoadGraph {
  constructor(gj) {
    this.pts = [];
    this.adj = [];
    const idx = new Map();
    const node = (c) => {
      const k = `${c[0].toFixed(5)},${c[1].toFixed(5)}`;
      let i = idx.get(k);
      if (i === undefined) {
        i = this.pts.length;
        idx.set(k, i);
        this.pts.push({ lat: c[1], lng: c[0] });
        this.adj.push([]);
      }
      return i;
    };
    for (const f of gj.features || []) {
      const g = f.geometry;
      if (!g || g.type !== 'LineString') continue;
      const oneway = f.properties && f.properties.oneway === true;
      let prev = -1;
      for (const c of g.coordinates) {
        const i = node(c);
        if (prev >= 0 && prev !== i) {
          const w = distance(this.pts[prev], this.pts[i]);
          this.adj[prev].push([i, w]);
          if (!oneway) this.adj[i].push([prev, w]);
        }
        prev = i;
      }
    }
  }

  get size() { return this.pts.length; }

  nearest(p) {
    let best = -1;
    let bd = Infinity;
    for (let i = 0; i < this.pts.length; i++) {
      if (!this.adj[i].length) continue;
      const d = Math.abs(this.pts[i].lat - p.lat) + Math.abs(this.pts[i].lng - p.lng);
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }

  // path returns the node points from a to b (nearest nodes), or null.
  path(a, b) {
    const s = this.nearest(a);
    const t = this.nearest(b);
    if (s < 0 || t < 0) return null;
    const dist = new Float64Array(this.pts.length).fill(Infinity);
    const prev = new Int32Array(this.pts.length).fill(-1);
    const heap = [[0, s]];
    dist[s] = 0;
    while (heap.length) {
      const [d, u] = pop(heap);
      if (u === t) break;
      if (d > dist[u]) continue;
      for (const [v, w] of this.adj[u]) {
        const nd = d + w;
        if (nd < dist[v]) { dist[v] = nd; prev[v] = u; push(heap, [nd, v]); }
      }
    }
    if (!Number.isFinite(dist[t])) return null;
    const out = [];
    for (let u = t; u >= 0; u = prev[u]) out.push(this.pts[u]);
    return out.reverse();
  }

  // wander returns a random route of about m meters from p.
  wander(p, m) {
    let u = this.nearest(p);
    if (u < 0) return null;
    const out = [this.pts[u]];
    let prev = -1;
    let len = 0;
    while (len < m) {
      const opts = this.adj[u].filter(([v]) => v !== prev);
      const pick = (opts.length ? opts : this.adj[u])[Math.floor(Math.random() * (opts.length || this.adj[u].length))];
      if (!pick) break;
      prev = u;
      u = pick[0];
      len += pick[1];
      out.push(this.pts[u]);
    }
    return out;
  }
}

function push(h, x) {
  h.push(x);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p][0] <= h[i][0]) break;
    [h[p], h[i]] = [h[i], h[p]];
    i = p;
  }
}

function pop(h) {
  const top = h[0];
  const last = h.pop();
  if (h.length) {
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l][0] < h[m][0]) m = l;
      if (r < h.length && h[r][0] < h[m][0]) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i], h[m]];
      i = m;
    }
  }
  return top;
}
