// The shared Leaflet map: the road network as a vector layer from
// /v1/map/roads.geojson (works offline, no external requests), and an
// optional basemap when the build set a tile URL (with its attribution).
import L from 'leaflet';
import 'leaflet/dist/leaflet.css';

export const OSM_ATTRIBUTION = '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';

// isOSMTileURL reports whether a tile URL template serves OpenStreetMap's
// own tiles (tile.openstreetmap.org or one of its a/b/c subdomains).
export function isOSMTileURL(url) {
  const m = /^(?:https?:)?\/\/([^/:?#]+)/i.exec(url || '');
  if (!m) return false;
  const host = m[1].toLowerCase().replace(/\{s\}/g, 'a');
  return host === 'openstreetmap.org' || host.endsWith('.openstreetmap.org');
}

// tileAttribution is the attribution a configured basemap carries: the one
// configured, else OpenStreetMap's for OSM tiles, else none.
export function tileAttribution(cfg) {
  if (cfg.tileAttribution) return cfg.tileAttribution;
  return isOSMTileURL(cfg.tileURL) ? OSM_ATTRIBUTION : '';
}

// Fallback view when the server has no road layer: the synthetic city's
// default centre is unknown to the page, so use a neutral zoomed-out view
// until drivers or a trip give a place to look at.
export const DEFAULT_CENTER = { lat: 41.1579, lng: -8.6291 };

let settingsPromise;
// settings loads /config.json once (tile URL and attribution).
export function settings() {
  if (!settingsPromise) {
    settingsPromise = fetch('/config.json', { cache: 'no-cache' })
      .then((r) => (r.ok ? r.json() : {}))
      .catch(() => ({}));
  }
  return settingsPromise;
}

const ROAD_STYLE = {
  motorway: { color: '#c9802c', weight: 4 },
  trunk: { color: '#c9802c', weight: 4 },
  primary: { color: '#d9a04a', weight: 3.5 },
  arterial: { color: '#d9a04a', weight: 3.5 },
  secondary: { color: '#c7b27a', weight: 3 },
  tertiary: { color: '#9aa3ad', weight: 2.5 },
};

function roadStyle(f) {
  const s = ROAD_STYLE[f.properties && f.properties.class] || { color: '#8b95a1', weight: 1.6 };
  return { ...s, opacity: 0.85, interactive: false };
}

// createMap builds the map in el and starts loading roads. It resolves to
// {map, roads: Promise<{ok, bounds, reason}>}.
export async function createMap(el, { onStatus } = {}) {
  const map = L.map(el, {
    preferCanvas: true,
    zoomControl: true,
    keyboard: true,
    attributionControl: true,
  }).setView([DEFAULT_CENTER.lat, DEFAULT_CENTER.lng], 13);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  const cfg = await settings();
  if (cfg.tileURL) {
    L.tileLayer(cfg.tileURL, { attribution: tileAttribution(cfg), maxZoom: 19 }).addTo(map);
  }
  const roads = loadRoads(map, onStatus);
  return { map, roads };
}

async function loadRoads(map, onStatus) {
  const report = (s) => onStatus && onStatus(s);
  report({ state: 'loading' });
  let res;
  try {
    res = await fetch('/v1/map/roads.geojson', { headers: { Accept: 'application/geo+json, application/json' } });
  } catch {
    report({ state: 'error', reason: 'server unreachable' });
    return { ok: false, reason: 'unreachable' };
  }
  if (!res.ok) {
    report({ state: 'missing', reason: `no road layer (HTTP ${res.status})` });
    return { ok: false, reason: `HTTP ${res.status}` };
  }
  let gj;
  try {
    gj = await res.json();
  } catch {
    report({ state: 'error', reason: 'road layer unreadable' });
    return { ok: false, reason: 'bad json' };
  }
  const source = (res.headers.get('X-Map-Source') || gj.source || '').toLowerCase();
  const layer = L.geoJSON(gj, { style: roadStyle, interactive: false }).addTo(map);
  layer.bringToBack();
  // Road data from OpenStreetMap must carry its attribution; a synthetic
  // city or an empty layer ("none") is not OSM data and goes without it.
  if (source === 'osm') map.attributionControl.addAttribution(OSM_ATTRIBUTION);
  // The loaded source, for tests and styling: data-map-source on the map.
  map.getContainer().dataset.mapSource = source || 'none';
  const bounds = layer.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [10, 10] });
  const n = (gj.features || []).length;
  report({ state: 'ok', features: n, source: source || 'none' });
  return { ok: true, bounds, features: n, geojson: gj };
}

// arrowIcon is a vehicle marker that can be rotated to a heading.
export function vehicleIcon(cls = '') {
  return L.divIcon({
    className: `vehicle ${cls}`,
    html: '<div class="vehicle-body"><svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><path d="M12 2 L19 20 L12 16 L5 20 Z"/><circle cx="12" cy="12" r="7"/></svg></div>',
    iconSize: [28, 28],
    iconAnchor: [14, 14],
  });
}

export function pinIcon(label, cls) {
  return L.divIcon({
    className: `pin ${cls}`,
    html: `<span>${label}</span>`,
    iconSize: [28, 28],
    iconAnchor: [14, 28],
  });
}

// rotate turns a vehicle marker's body to heading degrees (CSSOM, which
// CSP allows, not an inline style attribute).
export function rotate(marker, heading) {
  const el = marker.getElement();
  const body = el && el.querySelector('.vehicle-body');
  if (body && Number.isFinite(heading)) body.style.transform = `rotate(${heading}deg)`;
}

export { L };
