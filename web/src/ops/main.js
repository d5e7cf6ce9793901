// Ops dashboard: drivers in the viewport (streamed by the H3 cells that
// cover it), an H3 r7 supply/demand layer, live counters, uPlot charts of
// ingest rate and delivery latency, a live trips table with cancel and
// reassign, past trips from the archive and a trip's replay on the map
// (history.js, replay.js), webhook endpoints with the paused ones first
// (webhooks.js). Every feed degrades to a plainer one when the
// server lacks it: the viewport stream to nearby polling, the summary
// stream to polling, summary rates to /metrics.
import '../style.css';
import 'uplot/dist/uPlot.min.css';
import uPlot from 'uplot';
import { latLngToCell, cellToBoundary, polygonToCells, gridDisk } from 'h3-js';
import { createMap, L } from '../lib/map.js';
import { request, isMissing, isRejected, watchStream } from '@hextrack/client';
import * as auth from '../lib/auth.js';
import { MovingMarker } from '../lib/move.js';
import { $, el, setText, notice, fmtTime } from '../lib/ui.js';
import { distance } from '../lib/geo.js';
import { confirmAction } from '../lib/confirm.js';
import { TripsTable } from './table.js';
import { DriverList } from './drivers.js';
import { TripHistory } from './history.js';
import { Replay } from './replay.js';
import { WebhookList } from './webhooks.js';

const S = {
  token: null,
  drivers: new Map(),
  trips: new Map(),
  hex: null,
  viewStream: null,
  series: { t: [], ingest: [], latency: [] },
  metricsPrev: null,
};
window.hextrack = { state: S };
let map;

async function main() {
  const r = await createMap($('#map'), {
    onStatus: (s) => setText('#map-status', s.state === 'ok' ? '' : s.state === 'loading' ? 'Loading roads…' : `Road layer unavailable (${s.reason}).`),
  });
  map = r.map;
  window.hextrack.map = map;
  S.hex = L.layerGroup().addTo(map);
  S.table = new TripsTable({
    table: $('#trips-table'), tbody: $('#trips'), caption: $('#trips-caption'), note: $('#trips-note'),
    filters: { status: $('#f-status'), driver: $('#f-driver'), age: $('#f-age'), search: $('#f-search') },
    onAction: act,
  });
  S.trips = S.table.trips;
  $('#trip-filters').addEventListener('submit', (e) => e.preventDefault());
  S.driverList = new DriverList({ list: $('#drivers-scroll'), tbody: $('#drivers'), search: $('#d-search'), caption: $('#drivers-caption') },
    () => [...S.drivers].map(([id, m]) => ({ id, ...(m.info || {}), seenAt: m.seenAt })));
  S.replay = new Replay({
    map, api,
    onOpen: (id) => { $('#open-id').value = id; },
    // Focus goes back to what opened the replay (a Replay button).
    onClose: () => { if (S.replayFrom && S.replayFrom.isConnected) S.replayFrom.focus(); },
  });
  S.history = new TripHistory({ api, onReplay: openReplay });
  S.webhooks = new WebhookList({ api, send, notice });
  map.on('zoomend', () => { drawSupply(); countInView(); });
  map.on('moveend', countInView);
  await signIn();
  $('#hex-toggle').addEventListener('change', (e) => (e.target.checked ? S.hex.addTo(map) : S.hex.remove()));
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    try {
      auth.store('ops', $('#token-input').value.trim());
      S.token = auth.stored('ops');
      restartAll();
    } catch (err) {
      notice(err.message, 'error');
    }
  });
  await r.roads;
  let t;
  map.on('moveend', () => {
    clearTimeout(t);
    t = setTimeout(watchViewport, 300);
  });
  setupCharts();
  restartAll();
  S.history.search();
  S.webhooks.load();
}

// api is a GET of the JSON API as ops, with a fresh token once when the
// server rejects the one held.
async function api(path) {
  try {
    return await request(path, { token: S.token });
  } catch (e) {
    if (!isRejected(e) || !(await renewToken())) throw e;
    return request(path, { token: S.token });
  }
}

// send is a write to the JSON API as ops (opts: method, body), with a
// fresh token once when the server rejects the one held.
async function send(path, opts) {
  try {
    return await request(path, { ...opts, token: S.token });
  } catch (e) {
    if (!isRejected(e) || !(await renewToken())) throw e;
    return request(path, { ...opts, token: S.token });
  }
}

// openReplay shows trip id's replay under the map and moves focus to it.
async function openReplay(id) {
  if (S.replay.root.hidden) S.replayFrom = document.activeElement;
  const done = S.replay.open(id);
  $('#replay-title').focus();
  await done;
}

async function signIn() {
  const sub = auth.stableSub('ops', 'ops_');
  try {
    S.token = await auth.ensure('ops', sub);
  } catch (e) {
    notice(`Sign-in failed: ${e.message}`, 'error');
  }
  const c = S.token && auth.decode(S.token);
  setText('#who', c ? `Signed in as ${c.sub} (ops).` : 'Not signed in: paste an ops token.');
}

// renewToken replaces a token the server rejected (401): a fresh dev token,
// or a sign-in prompt. The streams pick the new token up on their next try.
async function renewToken() {
  if (S.renewing) return S.renewing;
  S.renewing = (async () => {
    const t = await auth.renew('ops', auth.stableSub('ops', 'ops_'));
    S.token = t;
    if (t) setText('#who', `Signed in as ${auth.decode(t).sub} (ops).`);
    else {
      setText('#who', 'The server rejected the sign-in: paste an ops token.');
      notice('The server rejected the sign-in: paste an ops token.', 'error');
      const d = $('#token-form').closest('details');
      if (d) d.open = true;
    }
    return t;
  })();
  try { return await S.renewing; } finally { S.renewing = null; }
}

function restartAll() {
  watchViewport();
  summaryLoop();
  supplyLoop();
  metricsLoop();
  loadTrips();
}

// loadTrips fills the table with the most recently changed trips; the
// summary stream keeps it live afterwards (its recent_trips).
async function loadTrips() {
  try {
    const r = await request('/v1/ops/trips?limit=50', { token: S.token });
    for (const t of r.trips || []) upsertTrip(t, false);
    renderTrips();
  } catch (e) {
    if (!isMissing(e)) setText('#trips-caption', `Trips unavailable: ${e.message}`);
  } finally {
    S.table.markLoaded();
  }
}

// --- drivers in the viewport ---------------------------------------------------

// viewportCells returns H3 cells that cover the view: the finest
// resolution (r9 at most, the index's) whose cover stays within 150 cells,
// so one stream URL stays short and "in view" means the view. The cover
// is the cells whose centres are inside plus the cells of the corners,
// edges' midpoints and centre with their neighbours: zoomed in, the view
// may hold no cell centre at all, and it must not fall back to one big
// cell covering the whole city.
function viewportCells() {
  const b = map.getBounds().pad(0.1);
  const [s, w, n, e] = [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()];
  const poly = [[s, w], [s, e], [n, e], [n, w]];
  const probes = [[s, w], [s, e], [n, e], [n, w], [(s + n) / 2, (w + e) / 2], [s, (w + e) / 2], [n, (w + e) / 2], [(s + n) / 2, w], [(s + n) / 2, e]];
  let cover = null;
  for (const res of [9, 8, 7, 6, 5, 4, 3]) {
    const set = new Set(polygonToCells(poly, res));
    for (const [lat, lng] of probes) for (const c of gridDisk(latLngToCell(lat, lng, res), 1)) set.add(c);
    cover = { res, cells: [...set] };
    if (cover.cells.length <= 150) return cover;
  }
  return cover;
}

// countInView counts the drivers inside the map's view (the streamed
// cells reach a little beyond it).
function countInView() {
  if (!map) return;
  const b = map.getBounds();
  let n = 0;
  for (const m of S.drivers.values()) if (b.contains([m.pos.lat, m.pos.lng])) n++;
  setText('#c-inview', String(n));
}

// tokenProvider gives the SDK's streams the ops token, and a fresh one
// when the server rejects it (null: the sign-in prompt; the stream stops).
const tokenProvider = ({ refresh }) => (refresh ? renewToken() : S.token);

function watchViewport() {
  if (!S.token || !map) return;
  if (S.viewStream) S.viewStream.close();
  const { res, cells } = viewportCells();
  const q = new URLSearchParams({ cells: cells.join(',') });
  const vs = watchStream(`/v1/ops/drivers/stream?${q}`, { tokenProvider });
  S.viewStream = vs;
  let opened = false;
  // Every frame, whatever its name, is a full replacement of the drivers.
  vs.on('event', (m) => {
    const d = m.data || {};
    if (Array.isArray(d.drivers)) applyDrivers(d.drivers, !d.partial);
  });
  vs.on('status', (st) => {
    if (vs !== S.viewStream) return;
    if (st.state === 'live') {
      opened = true;
      stopNearby();
      setConn('live', `viewport: ${cells.length} r${res} cells`);
    } else if (st.state === 'reconnecting') {
      // Refused or down (a server restarting, an old server without the
      // stream): poll nearby drivers meanwhile; the SDK keeps looking for
      // the stream with capped, jittered backoff, and the page goes back
      // to it as soon as it answers. Nothing here is decided for good.
      if (!S.polling) pollNearby();
      const wait = st.retryInMs ? `, retrying the stream in ${(st.retryInMs / 1000).toFixed(1)} s` : '';
      setConn('reconnecting', `viewport stream ${opened ? 'lost' : 'unavailable'}; polling nearby drivers${wait}`);
    } else if (st.state === 'signed-out') {
      if (!S.polling) pollNearby();
      setConn('reconnecting', 'the server rejected the sign-in: paste an ops token');
    }
  });
}

let nearbyTimer;
function stopNearby() {
  S.polling = false;
  clearTimeout(nearbyTimer);
}

async function pollNearby() {
  clearTimeout(nearbyTimer);
  S.polling = true;
  const c = map.getCenter();
  const radius = Math.min(50000, distance(c, map.getBounds().getNorthEast()));
  try {
    const r = await request(`/v1/drivers/nearby?lat=${c.lat}&lng=${c.lng}&radius_m=${Math.round(radius)}&limit=100`, { token: S.token });
    if (!S.polling) return;
    applyDrivers((r.drivers || []).map((d) => ({ ...d, status: d.status || 'available' })), true);
  } catch (e) {
    if (isRejected(e)) await renewToken();
  }
  if (S.polling) nearbyTimer = setTimeout(pollNearby, 2000);
}

function applyDrivers(list, full) {
  const seen = new Set();
  for (const d of list) {
    seen.add(d.id);
    let m = S.drivers.get(d.id);
    if (!m) {
      m = new MovingMarker(map, d, { cls: d.status === 'on_trip' ? 'assigned' : 'nearby', title: `Driver ${d.id}` });
      S.drivers.set(d.id, m);
    } else m.update(d);
    // For the driver list: status and when it last reported.
    m.info = d;
    m.seenAt = Date.now();
  }
  if (full) {
    for (const [id, m] of S.drivers) {
      if (!seen.has(id)) { m.remove(); S.drivers.delete(id); }
    }
  }
  countInView();
}

// --- counters --------------------------------------------------------------------

function pick(o, ...paths) {
  for (const p of paths) {
    let v = o;
    for (const k of p.split('.')) v = v == null ? undefined : v[k];
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

function applySummary(s) {
  const put = (id, v) => setText(id, v === undefined ? '–' : String(v));
  put('#c-online', pick(s, 'drivers.online', 'drivers_online'));
  put('#c-available', pick(s, 'drivers.available', 'drivers_available'));
  put('#c-ontrip', pick(s, 'drivers.on_trip', 'drivers_on_trip'));
  const trips = pick(s, 'trips', 'trips_by_status') || {};
  const open = typeof trips === 'object' ? Object.entries(trips).filter(([k]) => !['completed', 'cancelled', 'expired'].includes(k)).reduce((a, [, v]) => a + (Number(v) || 0), 0) : trips;
  put('#c-trips', open);
  const conns = pick(s, 'connections') || {};
  if (typeof conns === 'object') {
    put('#c-conns', Object.values(conns).reduce((a, v) => a + (Number(v) || 0), 0));
    setText('#c-detail', `Trips: ${fmtCounts(trips)} · Connections: ${fmtCounts(conns)}`);
  }
  const ingest = pick(s, 'ingest_rate', 'pings_per_s', 'rates.ingest');
  const lat = pick(s, 'delivery_latency_ms', 'latency.delivery_ms', 'delivery_latency.p50_ms');
  if (ingest !== undefined || lat !== undefined) {
    S.summaryRates = true;
    addPoint(Number(ingest) || 0, Number(lat) || 0);
    const n = pick(s, 'nodes');
    setText('#chart-status', `From the server${n ? ` (${n} node${n === 1 ? '' : 's'})` : ''} · ${fmtTime(new Date())}`);
  }
  for (const t of pick(s, 'recent_trips', 'trips_recent') || []) upsertTrip(t, false);
  renderTrips();
}

function fmtCounts(o) {
  if (!o || typeof o !== 'object') return '–';
  const e = Object.entries(o);
  return e.length ? e.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

let summaryStream;
function summaryLoop() {
  if (summaryStream) summaryStream.close();
  const ss = watchStream('/v1/ops/summary/stream', { tokenProvider });
  summaryStream = ss;
  let opened = false;
  ss.on('event', (m) => {
    const d = m.data || {};
    if (m.type && m.type.startsWith('trip.')) upsertTrip(d.trip || { id: (m.topic || '').replace('trip:', ''), ...d });
    else if (m.type !== 'error' && d && typeof d === 'object') applySummary(d);
  });
  ss.on('status', (st) => {
    if (st.state === 'live') opened = true;
    // Counters from one poll meanwhile; the SDK reconnects with capped,
    // jittered backoff (after an outage the page goes back to the stream).
    else if (st.state === 'reconnecting' && !opened && st.attempt === 1) pollSummary();
  });
}

async function pollSummary() {
  try {
    applySummary(await request('/v1/ops/summary', { token: S.token }));
  } catch (e) {
    if (isRejected(e)) await renewToken();
    else if (isMissing(e)) setText('#c-detail', 'This server has no ops summary yet; counters come from /metrics.');
  }
}

// --- supply/demand hexes ------------------------------------------------------

// hexRes is the H3 resolution of the supply layer at a zoom: cells of a
// few hundred pixels at most, so a city is tens of cells, not five.
function hexRes(zoom) {
  if (zoom >= 15) return 9;
  if (zoom >= 13) return 8;
  if (zoom >= 11) return 7;
  if (zoom >= 9) return 6;
  return 5;
}

let supplyTimer;
let localHexes = false;
async function supplyLoop() {
  clearTimeout(supplyTimer);
  if (localHexes) return drawLocalHexes();
  const res = hexRes(map.getZoom());
  try {
    const r = await request(`/v1/ops/supply?res=${res}`, { token: S.token });
    if (res !== hexRes(map.getZoom())) return supplyLoop(); // zoomed meanwhile
    const cells = r.cells || r.supply || [];
    drawHexes(cells);
    S.hexRes = res;
    setText('#hex-res', `r${res}`);
    setText('#hex-status', `${cells.length} cells at r${res} · updated ${fmtTime(new Date())}`);
    supplyTimer = setTimeout(supplyLoop, 5000);
  } catch (e) {
    if (isMissing(e)) {
      localHexes = true;
      drawLocalHexes();
      setInterval(drawLocalHexes, 3000);
      return;
    }
    supplyTimer = setTimeout(supplyLoop, 10000);
  }
}

// drawSupply redraws the layer at once after a zoom, at the new resolution.
function drawSupply() {
  if (hexRes(map.getZoom()) !== S.hexRes) supplyLoop();
}

function hexColor(supply, demand) {
  if (demand <= 0) return supply > 0 ? '#2da44e' : '#8b949e';
  const r = supply / demand;
  return r >= 1.5 ? '#2da44e' : r >= 0.8 ? '#d4a72c' : '#cf222e';
}

function drawHexes(cells) {
  S.hex.clearLayers();
  for (const c of cells) {
    const id = c.cell || c.id || c.h3;
    if (!id) continue;
    const supply = Number(c.available ?? c.supply ?? 0);
    const demand = Number(c.demand ?? c.open_trips ?? 0);
    L.polygon(cellToBoundary(id), { color: hexColor(supply, demand), weight: 1, fillOpacity: 0.25, interactive: false })
      .addTo(S.hex);
  }
}

// drawLocalHexes bins the drivers on the map by cell (no demand known).
function drawLocalHexes() {
  const res = hexRes(map.getZoom());
  const counts = new Map();
  for (const m of S.drivers.values()) {
    const c = latLngToCell(m.pos.lat, m.pos.lng, res);
    counts.set(c, (counts.get(c) || 0) + 1);
  }
  drawHexes([...counts].map(([cell, n]) => ({ cell, available: n, demand: 0 })));
  S.hexRes = res;
  setText('#hex-res', `r${res}`);
  setText('#hex-status', `No supply endpoint on this server: drivers per r${res} cell from the map.`);
}

// --- charts -------------------------------------------------------------------

let ingestPlot;
let latencyPlot;
function setupCharts() {
  const width = () => Math.max(260, $('#chart-ingest').clientWidth || 400);
  const mk = (el, label, color) => new uPlot({
    width: width(), height: 150,
    series: [{}, { label, stroke: color, width: 2, fill: `${color}22` }],
    axes: [{}, { size: 50 }],
    legend: { show: true },
  }, [[], []], el);
  ingestPlot = mk($('#chart-ingest'), 'pings/s', '#1f6feb');
  latencyPlot = mk($('#chart-latency'), 'ms', '#8250df');
  window.addEventListener('resize', () => {
    ingestPlot.setSize({ width: width(), height: 150 });
    latencyPlot.setSize({ width: width(), height: 150 });
  });
}

function addPoint(ingest, latency) {
  const s = S.series;
  s.t.push(Date.now() / 1000);
  s.ingest.push(ingest);
  s.latency.push(latency);
  if (s.t.length > 300) for (const k of ['t', 'ingest', 'latency']) s[k].shift();
  ingestPlot.setData([s.t, s.ingest]);
  latencyPlot.setData([s.t, s.latency]);
}

// metricsLoop derives rates from the Prometheus text at /metrics when the
// summary doesn't carry them: accepted pings per second, and the mean
// feed delivery lag over the last interval.
async function metricsLoop() {
  if (S.summaryRates) return;
  try {
    const res = await fetch('/metrics', { headers: S.token ? { Authorization: `Bearer ${S.token}` } : {} });
    if (S.summaryRates) return; // the summary took over meanwhile
    if (res.ok) {
      const m = parseMetrics(await res.text());
      const now = Date.now() / 1000;
      const p = S.metricsPrev;
      if (p) {
        const dt = now - p.t;
        const ingest = Math.max(0, (m.pings - p.pings) / dt);
        const dc = m.lagCount - p.lagCount;
        const lat = dc > 0 ? ((m.lagSum - p.lagSum) / dc) * 1000 : 0;
        addPoint(+ingest.toFixed(1), +lat.toFixed(1));
        if (m.conns.size && $('#c-conns').textContent === '–') {
          setText('#c-conns', String([...m.conns.values()].reduce((a, b) => a + b, 0)));
        }
      }
      S.metricsPrev = { t: now, ...m };
      setText('#chart-status', `From /metrics · ${fmtTime(new Date())}`);
    } else setText('#chart-status', `Metrics unavailable (HTTP ${res.status}).`);
  } catch {
    setText('#chart-status', 'Metrics unavailable (server unreachable).');
  }
  setTimeout(metricsLoop, 2000);
}

function parseMetrics(text) {
  const out = { pings: 0, lagSum: 0, lagCount: 0, conns: new Map() };
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const sp = line.lastIndexOf(' ');
    const name = line.slice(0, sp);
    const v = Number(line.slice(sp + 1));
    if (!Number.isFinite(v)) continue;
    if (name === 'hextrack_pings_accepted_total') out.pings = v;
    else if (name.startsWith('hextrack_feed_delivery_lag_seconds_sum')) out.lagSum += v;
    else if (name.startsWith('hextrack_feed_delivery_lag_seconds_count')) out.lagCount += v;
    else if (name.startsWith('hextrack_connections{')) {
      const m = /transport="([^"]*)"/.exec(name);
      out.conns.set(m ? m[1] : '?', v);
    }
  }
  return out;
}

// --- trips table ---------------------------------------------------------------

// upsertTrip keeps the newest version of a trip (TripsTable.upsert).
function upsertTrip(t, render = true) {
  if (S.table.upsert(t) && render) renderTrips();
}

function renderTrips() {
  S.table.render();
}

// act cancels or reassigns a trip once the operator confirms.
async function act(t, action) {
  const id = t.id;
  const ok = await confirmAction(action === 'cancel'
    ? { title: `Cancel trip ${id}?`, body: `${t.driver_id ? `The rider and driver ${t.driver_id} are` : 'The rider is'} told at once. This can't be undone.`, ok: 'Cancel trip', keep: 'Keep trip' }
    : { title: `Reassign trip ${id}?`, body: `Driver ${t.driver_id || '(none)'} is taken off the trip and dispatch looks for another driver.`, ok: 'Reassign', keep: 'Keep driver' });
  if (!ok) return;
  try {
    const snap = await request(`/v1/trips/${encodeURIComponent(id)}/${action}`, { method: 'POST', token: S.token, body: { reason: `ops_${action}` } });
    if (snap && snap.trip) upsertTrip(snap.trip);
    notice(`Trip ${id}: ${action} done.`);
  } catch (e) {
    notice(`${action} failed: ${e.message}`, 'error');
  }
}

function setConn(state, detail) {
  $('#conn').dataset.state = state;
  setText('#conn-state', state);
  setText('#conn-detail', detail ? `— ${detail}` : '');
}

main().catch((e) => notice(`Page failed to start: ${e.message}`, 'error'));
