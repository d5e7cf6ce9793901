// Rider map: plan a trip (pickup/dropoff, nearby drivers), request it, and
// follow it live over the selected transport. Also the read-only view of a
// share link (#trip=<id>&token=<viewer token>).
import '../style.css';
import { createMap, L, pinIcon } from '../lib/map.js';
import { request, randomId as idKey, isMissing, isNetwork, isRejected, HextrackError, TripGoneError, watchTrip, TRANSPORTS, label } from '@hextrack/client';
import * as auth from '../lib/auth.js';
import { MovingMarker } from '../lib/move.js';
import { $, el, setText, notice, fmtTime } from '../lib/ui.js';
import { fmtDistance, fmtDuration } from '../lib/geo.js';
import { Payment } from './payment.js';
import { confirmAction } from '../lib/confirm.js';
import { Streets } from '../lib/places.js';
import { RouteLine } from './route.js';

const TERMINAL = new Set(['completed', 'cancelled', 'expired']);
const STATUS_TEXT = {
  awaiting_payment: 'Awaiting payment',
  requested: 'Finding a driver',
  driver_assigned: 'Driver on the way',
  driver_arrived: 'Driver has arrived',
  in_progress: 'On the way',
  completed: 'Completed',
  cancelled: 'Cancelled',
  expired: 'No driver found',
};

const S = {
  token: null,
  viewer: false,
  pickup: null,
  dropoff: null,
  pickupMarker: null,
  dropoffMarker: null,
  nearby: new Map(),
  tripId: null,
  trip: null,
  version: 0,
  eta: null,
  car: null,
  feed: null,
  timeline: [],
  chatSeen: new Set(),
  transport: localStorage.getItem('hextrack.transport') || 'auto',
};

// Expose a little state for the browser tests and for curious humans.
window.hextrack = { state: S };

let map;
// payment: online payment of deliveries (payment.js); returned is the
// payment ID when the gateway sent the rider back (?payment=).
let payment;
let returned = null;

function params() {
  const out = new URLSearchParams(location.search);
  for (const [k, v] of new URLSearchParams(location.hash.slice(1))) out.set(k, v);
  return out;
}

async function main() {
  const { map: m, roads } = await createMap($('#map'), {
    onStatus: (s) => setText('#map-status', s.state === 'ok' ? '' : s.state === 'loading' ? 'Loading roads…' : `Road layer unavailable: ${s.reason}. Drivers and trips still work.`),
  });
  map = m;
  window.hextrack.map = map;
  S.route = new RouteLine(map);
  roads.then((r) => {
    if (!r.ok) return;
    // Street names for addresses, roads for the route line.
    S.streets = new Streets(r.geojson);
    S.route.useRoads(r.geojson);
    for (const k of ['pickup', 'dropoff']) if (S[k]) showPlace(k, S[k]);
    drawRoute();
    // The road layer fits the map to the city; a trip shown meanwhile
    // (a share link, a reload) is what the rider came to see.
    if (S.pickup && S.dropoff) map.fitBounds(L.latLngBounds([S.pickup, S.dropoff]).pad(0.4));
  });
  const p = params();
  const shareToken = p.get('token') || p.get('access_token');
  if (shareToken) {
    S.viewer = true;
    S.token = shareToken;
    document.body.classList.add('viewer');
    const claims = auth.decode(shareToken) || {};
    S.tripId = p.get('trip') || claims.trip;
    $('#plan').hidden = true;
    setText('#who', 'Viewing a shared trip (read-only).');
    // A viewer follows someone else's trip: no "your", nothing to drag.
    setText('#trip-title', 'Shared trip');
    $('#map').setAttribute('aria-label', 'Map of the shared trip: pickup, dropoff and the driver');
    document.title = 'hextrack — shared trip';
  }
  // Before any await: a click on the map while the page signs in sets a
  // point instead of being lost.
  wireControls();
  document.body.dataset.ready = 'true';
  if (!shareToken) {
    await signIn();
    S.tripId = localStorage.getItem('hextrack.rider.trip');
    // Back from the payment gateway: /?trip=<id>&payment=<id>.
    if (p.get('trip') && p.get('payment')) {
      S.tripId = p.get('trip');
      returned = p.get('payment');
      localStorage.setItem('hextrack.rider.trip', S.tripId);
      history.replaceState(null, '', '/');
    }
    payment = new Payment(() => S.token);
  }
  roads.then((r) => {
    if (!r.ok && !S.tripId) locateFromDrivers();
  });
  if (S.tripId) {
    await openTrip(S.tripId);
  } else {
    planMode();
  }
}

async function signIn() {
  const sub = auth.stableSub('rider', 'r_');
  try {
    S.token = await auth.ensure('rider', sub);
  } catch (e) {
    S.token = null;
    notice(isNetwork(e) ? 'Server unreachable; retrying sign-in when you act.' : `Sign-in failed: ${e.message}`, 'error');
  }
  if (!S.token) {
    const t = auth.stored('rider');
    if (t) S.token = t;
  }
  const c = S.token && auth.decode(S.token);
  setText('#who', c ? `Signed in as rider ${c.sub} (token expires ${fmtTime(new Date(c.exp * 1000))}).` : 'Not signed in: paste a rider token below.');
}

// renewToken replaces a token the server rejected (401): a fresh dev token
// for the same rider, or (not in dev mode, or a share link) a clear
// sign-in prompt. Returns the new token or null.
async function renewToken() {
  if (S.viewer) {
    signInPrompt('This share link no longer works: ask for a new one.');
    return null;
  }
  const t = await auth.renew('rider', auth.stableSub('rider', 'r_'));
  if (!t) {
    S.token = null;
    signInPrompt('The server rejected your sign-in: paste a rider token below to continue.');
    return null;
  }
  S.token = t;
  const c = auth.decode(t);
  setText('#who', `Signed in as rider ${c.sub} (token expires ${fmtTime(new Date(c.exp * 1000))}).`);
  return t;
}

// call is request with the rider's token; a token the server rejects is
// renewed (renewToken) and the call made once more with the new one.
async function call(path, opts = {}) {
  try {
    return await request(path, { ...opts, token: S.token });
  } catch (e) {
    if (!isRejected(e)) throw e;
    const t = await renewToken();
    if (!t) throw e;
    return request(path, { ...opts, token: t });
  }
}

function signInPrompt(msg) {
  setText('#who', msg);
  notice(msg, 'error');
  const d = $('#token-form').closest('details');
  if (d) d.open = true;
  if (!S.viewer) $('#token-input').focus();
}

function wireControls() {
  map.on('click', (e) => {
    if (S.viewer || (S.trip && !TERMINAL.has(S.trip.status))) return;
    if (!S.pickup) setPoint('pickup', e.latlng);
    else if (!S.dropoff) setPoint('dropoff', e.latlng);
    else setPoint('dropoff', e.latlng);
  });
  $('#set-pickup').addEventListener('click', () => setPoint('pickup', map.getCenter()));
  $('#set-dropoff').addEventListener('click', () => setPoint('dropoff', map.getCenter()));
  $('#request').addEventListener('click', requestTrip);
  $('#cancel').addEventListener('click', cancelTrip);
  $('#share').addEventListener('click', shareTrip);
  $('#share-copy').addEventListener('click', async () => {
    const inp = $('#share-url');
    inp.select();
    try { await navigator.clipboard.writeText(inp.value); notice('Link copied.'); } catch { notice('Select the link and copy it.'); }
  });
  $('#new-trip').addEventListener('click', () => {
    closeTrip();
    planMode();
  });
  $('#chat-form').addEventListener('submit', sendChat);
  const sel = $('#transport');
  sel.value = TRANSPORTS.includes(S.transport) ? S.transport : 'auto';
  sel.addEventListener('change', () => {
    S.transport = sel.value;
    localStorage.setItem('hextrack.transport', S.transport);
    if (S.feed) S.feed.setTransport(S.transport);
    notice(`Transport: ${label(S.transport)}.`);
  });
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    try {
      auth.store('rider', $('#token-input').value.trim());
      S.token = auth.stored('rider');
      notice('Token saved.');
      // The trip's stream goes on with the new token.
      signIn().then(() => {
        if (S.tripId && S.feed) startFeed(null, S.feed.lastEventId);
      });
    } catch (err) {
      notice(err.message, 'error');
    }
  });
}

// --- planning --------------------------------------------------------------

function setPoint(which, ll) {
  const p = { lat: +ll.lat.toFixed(6), lng: +ll.lng.toFixed(6) };
  const addr = ll.address || placeOf(p);
  if (addr) p.address = addr;
  S[which] = p;
  const key = `${which}Marker`;
  if (!S[key]) {
    S[key] = L.marker([p.lat, p.lng], {
      icon: pinIcon(which === 'pickup' ? 'A' : 'B', which),
      draggable: !S.viewer,
      title: which === 'pickup' ? 'Pickup' : 'Dropoff',
      alt: which,
      keyboard: true,
      autoPan: true,
    }).addTo(map);
    S[key].on('dragend', () => onDrag(which));
  } else {
    S[key].setLatLng([p.lat, p.lng]);
  }
  showPlace(which, p);
  $('#request').disabled = !(S.pickup && S.dropoff);
  if (which === 'pickup') refreshNearby();
  drawRoute();
}

// placeOf names a point by the nearest street(s) of the map, or ''.
function placeOf(p) {
  return S.streets ? S.streets.address(p) : '';
}

// showPlace writes a point in the plan card and the trip card: the
// address when known (the trip's, else the map's street names), with the
// coordinates beneath it.
function showPlace(which, p) {
  const addr = p.address || placeOf(p);
  const coords = `${p.lat.toFixed(5)}, ${p.lng.toFixed(5)}`;
  for (const sel of [`#${which}-text`, which === 'pickup' ? '#trip-from' : '#trip-to']) {
    const box = $(sel);
    if (!box) continue;
    box.replaceChildren(addr
      ? el('span', { class: 'place' }, el('span', { class: 'addr', text: addr }), el('span', { class: 'coords', text: coords }))
      : coords);
    box.dataset.address = addr || '';
  }
}

// drawRoute draws the route line for where the trip stands: the approach
// while a driver comes to the pickup, the trip leg until the trip ends.
function drawRoute() {
  if (!S.route) return;
  const st = S.trip && S.trip.status;
  if ((st && TERMINAL.has(st)) || S.lost) {
    S.route.clear();
    return;
  }
  const loc = S.lastLoc && Number.isFinite(Number(S.lastLoc.lat)) ? { lat: Number(S.lastLoc.lat), lng: Number(S.lastLoc.lng) } : null;
  S.route.show({ pickup: S.pickup, dropoff: S.dropoff, car: loc, toPickup: st === 'driver_assigned' });
}

async function onDrag(which) {
  const ll = S[`${which}Marker`].getLatLng();
  const active = S.trip && !TERMINAL.has(S.trip.status);
  if (!active) {
    setPoint(which, ll);
    return;
  }
  if (which !== 'dropoff') {
    S.pickupMarker.setLatLng([S.pickup.lat, S.pickup.lng]);
    notice('The pickup can’t be moved once requested.');
    return;
  }
  const to = { lat: +ll.lat.toFixed(6), lng: +ll.lng.toFixed(6) };
  try {
    const snap = await call(`/v1/trips/${S.tripId}/dropoff`, {
      method: 'POST', token: S.token, body: to,
      headers: { 'If-Match': String(S.version) },
    });
    if (snap && snap.trip) applySnapshot(snap, 'action');
    S.dropoff = to;
    showPlace('dropoff', to);
    drawRoute();
    notice('Dropoff changed.');
  } catch (e) {
    S.dropoffMarker.setLatLng([S.dropoff.lat, S.dropoff.lng]);
    if (e instanceof HextrackError && e.status === 412) {
      notice('The trip changed meanwhile; reloaded it — try again.', 'error');
      refetch();
    } else notice(`Could not change the dropoff: ${e.message}`, 'error');
  }
}

let nearbyTimer;
function planMode() {
  $('#plan').hidden = S.viewer;
  $('#trip').hidden = true;
  setConn('idle', 'no trip yet', '');
  clearInterval(nearbyTimer);
  refreshNearby();
  nearbyTimer = setInterval(refreshNearby, 3000);
}

async function refreshNearby() {
  if (S.viewer || (S.trip && !TERMINAL.has(S.trip.status)) || !S.token || !map) return;
  const c = S.pickup || map.getCenter();
  try {
    const r = await call(`/v1/drivers/nearby?lat=${c.lat}&lng=${c.lng}&radius_m=5000&limit=20`, { token: S.token });
    drawNearby(r.drivers || []);
  } catch (e) {
    setText('#nearby-text', isNetwork(e) ? 'Server unreachable; retrying…' : `Nearby drivers unavailable (${e.message}).`);
  }
}

function drawNearby(list) {
  const seen = new Set();
  for (const d of list) {
    seen.add(d.id);
    let m = S.nearby.get(d.id);
    if (!m) {
      m = new MovingMarker(map, d, { cls: 'nearby', title: `Driver ${d.id}` });
      S.nearby.set(d.id, m);
    } else m.update(d);
  }
  for (const [id, m] of S.nearby) {
    if (!seen.has(id)) {
      m.remove();
      S.nearby.delete(id);
    }
  }
  if (!list.length) {
    setText('#nearby-text', 'No drivers nearby right now.');
    return;
  }
  const n = list[0];
  const eta = Number.isFinite(n.eta_s) && n.eta_s > 0 ? `, about ${Math.max(1, Math.round(n.eta_s / 60))} min away` : '';
  setText('#nearby-text', `${list.length} driver${list.length === 1 ? '' : 's'} nearby; nearest ${fmtDistance(n.distance_m)}${eta}.`);
}

function clearNearby() {
  clearInterval(nearbyTimer);
  for (const m of S.nearby.values()) m.remove();
  S.nearby.clear();
}

// locateFromDrivers centres the map on the server's drivers when there is
// no road layer to fit to (the map otherwise shows a default place).
async function locateFromDrivers() {
  if (!S.token) return;
  try {
    const r = await call(`/v1/drivers/nearby?lat=${map.getCenter().lat}&lng=${map.getCenter().lng}&radius_m=50000&limit=5`, { token: S.token });
    if (r.drivers && r.drivers.length) map.setView([r.drivers[0].lat, r.drivers[0].lng], 14);
  } catch { /* the status line already says what is missing */ }
}

// --- trip ------------------------------------------------------------------

async function requestTrip() {
  if (!S.token) await signIn();
  const btn = $('#request');
  btn.disabled = true;
  const kind = document.querySelector('input[name=kind]:checked').value;
  const body = {
    kind,
    pickup: { ...S.pickup, address: S.pickup.address || '' },
    dropoff: { ...S.dropoff, address: S.dropoff.address || '' },
    payment: $('#payment').value,
  };
  try {
    const snap = await call('/v1/trips', { method: 'POST', token: S.token, body, headers: { 'Idempotency-Key': idKey() } });
    localStorage.setItem('hextrack.rider.trip', snap.trip.id);
    await openTrip(snap.trip.id, snap);
  } catch (e) {
    btn.disabled = false;
    if (isMissing(e)) notice('This server does not offer trips yet.', 'error');
    else notice(`Request failed: ${e.message}`, 'error');
  }
}

async function openTrip(id, snap) {
  S.tripId = id;
  clearNearby();
  $('#plan').hidden = true;
  $('#trip').hidden = false;
  setText('#trip-id', id);
  if (!snap) {
    try {
      snap = await call(`/v1/trips/${encodeURIComponent(id)}`, { token: S.token });
    } catch (e) {
      if (e instanceof HextrackError && (e.status === 404 || e.status === 403)) {
        notice(`Trip ${id} is not available (${e.message}).`, 'error');
        if (!S.viewer) {
          localStorage.removeItem('hextrack.rider.trip');
          closeTrip();
          planMode();
        }
        return;
      }
      notice(`Trip unavailable for now (${e.message}); retrying.`, 'error');
    }
  }
  if (snap) applySnapshot(snap, 'snapshot');
  // A trip whose live state was lost has nothing more to say.
  if (S.lost) setConn('live', 'this trip is no longer tracked live', '');
  else startFeed(snap);
}

// startFeed follows the trip through the SDK: every event of every type
// on one listener, whatever the transport ("auto" unless chosen), resumed
// after snap's position (or after lastId) when given.
function startFeed(snap, lastId) {
  if (S.feed) S.feed.close();
  S.feedDone = false;
  const feed = watchTrip(S.tripId, {
    transport: S.transport,
    lastEventId: (snap && snap.feed_position) || lastId || '',
    // A rejected token: a fresh dev token, or the sign-in prompt (null
    // stops the feed with an AuthError: no endless retry).
    tokenProvider: ({ refresh }) => (refresh ? renewToken() : S.token),
  });
  S.feed = feed;
  feed.on('event', (env) => {
    if (env.type === 'snapshot' || env.type === 'reset') applySnapshot(env.data, env.type);
    else applyEvent(env);
  });
  feed.on('status', (st) => {
    if (feed === S.feed && st.state !== 'closed') setConn(st.state, st.detail, st.transport, st);
    if (LIVE.has(st.state) && (S.lost || S.feedDone)) feed.close();
  });
  // The server does not know the trip at all (lost before it was
  // archived): the feed stopped; say so as for a trip whose tracking was
  // lost, from what the page last knew.
  feed.on('error', (err) => {
    if (feed !== S.feed || !(err instanceof TripGoneError)) return;
    S.lost = true;
    trackingLost(true);
    setConn('live', 'the server no longer knows this trip', '');
  });
}

// A trip that is over (ended, or its live state lost) is followed no
// longer once the page is connected: the feed stops then, so the badge
// says connected, not "reconnecting" for good, and nothing retries. Until
// then (the server is down) it goes on reconnecting, and stops as soon as
// it is back (startFeed's status listener).
const LIVE = new Set(['live', 'resumed', 'reset']);
function endFeed() {
  S.feedDone = true;
  if (S.feed && LIVE.has($('#conn').dataset.state)) S.feed.close();
}

function closeTrip() {
  if (S.feed) S.feed.close();
  S.feed = null;
  if (S.car) S.car.remove();
  S.car = null;
  S.trip = null;
  S.tripId = null;
  S.lost = false;
  $('#lost').hidden = true;
  delete $('#trip').dataset.lost;
  S.timeline = [];
  S.chatSeen.clear();
  $('#timeline').replaceChildren();
  $('#chat').replaceChildren();
  $('#share-out').hidden = true;
  if (payment) payment.hide();
  localStorage.removeItem('hextrack.rider.trip');
  for (const k of ['pickup', 'dropoff']) {
    if (S[`${k}Marker`]) S[`${k}Marker`].remove();
    S[`${k}Marker`] = null;
    S[k] = null;
    setText(`#${k}-text`, 'not set');
  }
  if (S.route) S.route.clear();
  S.lastLoc = null;
  $('#request').disabled = true;
}

function applySnapshot(snap, why) {
  if (!snap || !snap.trip) return;
  const t = snap.trip;
  // Served from the archive after the server lost the trip under way.
  if (snap.tracking_lost) S.lost = true;
  S.trip = { ...(S.trip || {}), ...t };
  if (Number.isFinite(snap.version)) S.version = snap.version;
  else if (Number.isFinite(t.version)) S.version = t.version;
  for (const k of ['pickup', 'dropoff']) {
    if (t[k] && Number.isFinite(t[k].lat)) {
      if (!S[`${k}Marker`] || !S[k] || S[k].lat !== t[k].lat || S[k].lng !== t[k].lng) setPoint(k, t[k]);
      S[k] = t[k];
      showPlace(k, t[k]);
    }
  }
  const hist = t.history || t.timeline || t.transitions;
  if (Array.isArray(hist)) {
    for (const h of hist) addTimeline(h.status || h.to, h.ts || h.at);
  }
  addTimeline(t.status, t.updated_at || t.status_at || t.created_at);
  setStatus(t.status);
  setDriver(snap.driver || (t.driver_id ? { id: t.driver_id } : null));
  if (snap.location) moveCar(snap.location);
  if ('eta' in snap) setEta(snap.eta);
  for (const msg of snap.messages || t.messages || []) addChat(msg);
  if (S.lost) trackingLost();
  else if (why === 'reset') notice('Trip state reloaded from a fresh snapshot.');
  if (!S.fitted && S.pickup && S.dropoff) {
    S.fitted = true;
    map.fitBounds(L.latLngBounds([S.pickup, S.dropoff]).pad(0.4));
  }
}

function applyEvent(env) {
  const d = env.data || {};
  if (d.trip) {
    S.trip = { ...(S.trip || {}), ...d.trip };
  }
  if (Number.isFinite(d.version)) S.version = d.version;
  else if (d.trip && Number.isFinite(d.trip.version)) S.version = d.trip.version;
  const status = d.status || d.to || (d.trip && d.trip.status);
  switch (env.type) {
    case 'trip.location':
      moveCar(d);
      return;
    case 'trip.eta':
      setEta(d.eta || d);
      return;
    case 'trip.message':
      addChat(d.message || d);
      return;
    case 'trip.address_changed': {
      const to = d.dropoff || (d.trip && d.trip.dropoff);
      if (to && Number.isFinite(to.lat)) {
        setPoint('dropoff', to);
        S.dropoff = to;
      }
      notice('The dropoff was changed.');
      break;
    }
    case 'trip.assigned':
      setDriver(d.driver || { id: d.driver_id || (d.trip && d.trip.driver_id) });
      break;
    case 'trip.arriving': {
      // dispatch: the driver is under a minute from the pickup.
      S.arriving = true;
      const b = $('#arriving');
      b.hidden = false;
      // The countdown is the ETA line's job: this says what to do.
      b.textContent = S.viewer ? 'Driver arriving at the pickup' : 'Driver arriving — time to head to the pickup';
      if (d.eta && typeof d.eta === 'object') setEta(d.eta);
      return;
    }
    case 'payment.status':
      if (payment) payment.onEvent(d);
      return;
    case 'trip.cancelled':
      addTimeline('cancelled', env.ts);
      setStatus('cancelled');
      return;
    default:
      // A stop's own events (stop.status: pending → arriving → arrived …,
      // stop.approaching, stop.added, …) say where one stop is, not the
      // trip: the trip's status comes with trip.status.
      if (env.type.startsWith('stop.')) return;
  }
  if (status) {
    if (S.trip) S.trip.status = status;
    addTimeline(status, env.ts);
    setStatus(status);
  }
  if (d.eta !== undefined && env.type !== 'trip.eta') setEta(d.eta);
  if (d.driver_id === '' || (status === 'requested' && S.trip)) setDriver(null);
}

function setStatus(status) {
  if (!status) return;
  const b = $('#trip-status');
  b.textContent = STATUS_TEXT[status] || status;
  b.dataset.status = status;
  const done = TERMINAL.has(status);
  // A trip whose live state was lost can't be acted on either (the
  // server no longer holds it live): only "New trip".
  const over = done || S.lost;
  $('#cancel').hidden = over || S.viewer || status === 'in_progress';
  $('#share').hidden = over || S.viewer;
  $('#new-trip').hidden = !over || S.viewer;
  $('#chat-form').hidden = over || S.viewer;
  $('#drag-hint').hidden = over;
  if (S.dropoffMarker) {
    if (over || S.viewer) S.dropoffMarker.dragging && S.dropoffMarker.dragging.disable();
    else S.dropoffMarker.dragging && S.dropoffMarker.dragging.enable();
  }
  if (S.pickupMarker && S.pickupMarker.dragging) S.pickupMarker.dragging.disable();
  if (status === 'awaiting_payment' && payment && S.tripId && !S.lost) payment.show(S.tripId, returned);
  if (status !== 'driver_assigned') $('#arriving').hidden = true;
  // At the pickup the ETA to it is over; the one to the dropoff comes
  // with the trip's next trip.eta once it is in progress.
  if (status === 'driver_arrived' && S.eta && S.eta.to !== 'dropoff') setEta(null);
  if (done) {
    setEta(null);
    if (S.feed && status !== 'cancelled') setTimeout(() => S.feed && TERMINAL.has(S.trip && S.trip.status) && endFeed(), 5000);
  }
  if (status === 'requested' && S.car) {
    S.car.remove();
    S.car = null;
    S.lastLoc = null;
  }
  drawRoute();
}

function addTimeline(status, ts) {
  if (!status) return;
  const last = S.timeline[S.timeline.length - 1];
  if (last && last.status === status) return;
  if (S.timeline.some((x) => x.status === status) && status !== 'requested') return;
  const at = ts ? new Date(ts) : new Date();
  S.timeline.push({ status, at });
  $('#timeline').append(el('li', { dataset: { status } },
    el('span', { class: 'when', text: fmtTime(Number.isNaN(at.getTime()) ? new Date() : at) }), ' ',
    el('span', { text: STATUS_TEXT[status] || status })));
}

function setDriver(drv) {
  if (!drv || !drv.id) {
    setText('#driver-text', S.trip && TERMINAL.has(S.trip.status) ? '—' : 'searching…');
    return;
  }
  const parts = [drv.name || drv.id];
  if (drv.vehicle) parts.push(drv.vehicle);
  setText('#driver-text', parts.join(' · '));
}

function moveCar(loc) {
  if (!loc || !Number.isFinite(Number(loc.lat))) return;
  if ((S.trip && TERMINAL.has(S.trip.status)) || S.lost) return;
  if (!S.car) S.car = new MovingMarker(map, { lat: Number(loc.lat), lng: Number(loc.lng), heading: Number(loc.heading) }, { cls: 'assigned', title: S.viewer ? 'Driver' : 'Your driver' });
  else S.car.update(loc);
  S.lastLoc = loc;
  drawRoute();
}

// trackingLost shows a trip the server served from its archive while it
// was under way: its live state was lost (make run's embedded Redis starts
// empty after a restart), so nothing moves it on any more. The rider sees
// its last known status with the time it was reached and a note saying
// live tracking was lost and what to do; no ETA (it would count down to
// nothing), no driver on the map, no actions the server can't carry out
// (cancel, share, chat, pay): "New trip" instead. The feed stops once it
// has said it is connected (startFeed). unknown: the server does not
// know the trip at all (lost before it was archived); the status is then
// the one the page last showed.
function trackingLost(unknown = false) {
  if (S.car) {
    S.car.remove();
    S.car = null;
  }
  S.lastLoc = null;
  setEta(null);
  $('#arriving').hidden = true;
  if (payment) payment.hide();
  const st = S.trip && S.trip.status;
  const at = S.trip && new Date(S.trip.updated_at || S.trip.created_at);
  const when = !unknown && at && !Number.isNaN(at.getTime()) ? ` (since ${fmtTime(at)})` : '';
  const last = `Last known status: ${STATUS_TEXT[st] || st || 'unknown'}${when}.`;
  const what = unknown
    ? 'Live tracking of this trip was lost when the service restarted, and the server no longer knows it.'
    : 'Live tracking of this trip was lost when the service restarted.';
  const box = $('#lost');
  box.textContent = S.viewer
    ? `${what} ${last} This page won’t update any more.`
    : `${what} ${last} It won’t update any more: if your driver doesn’t come, request a new trip.`;
  box.hidden = false;
  $('#trip').dataset.lost = 'true';
  setStatus(st);
}

// --- ETA countdown -----------------------------------------------------------

let etaTimer;
function setEta(eta) {
  // trip.eta and the snapshot's eta: {leg, eta_s, arrive_at, distance_m,
  // route_version}; an older route_version than the one shown is stale.
  const rv = eta ? Number(eta.route_version) : NaN;
  if (Number.isFinite(rv) && S.eta && Number.isFinite(S.eta.rv) && rv < S.eta.rv) return;
  const status = S.trip && S.trip.status;
  const leg = eta && (eta.leg || eta.to || eta.target);
  // No ETA once there: a pickup ETA after arrival, any after the end.
  if (eta && (TERMINAL.has(status) || S.lost || (status === 'driver_arrived' && leg !== 'dropoff'))) eta = null;
  clearInterval(etaTimer);
  if (!eta) {
    S.eta = null;
    setText('#eta', '');
    delete $('#eta').dataset.stale;
    return;
  }
  const secs = Number(eta.seconds ?? eta.eta_s ?? eta.duration_s ?? eta.s ?? eta);
  let at = eta.arrive_at || eta.at || eta.arrival || eta.arrives_at;
  at = at ? new Date(at).getTime() : Date.now() + secs * 1000;
  if (!Number.isFinite(at)) return;
  S.eta = { at, rv, to: leg || (status === 'in_progress' ? 'dropoff' : 'pickup') };
  etaTick();
  if (!S.etaStale) etaTimer = setInterval(etaTick, 1000);
}

function etaTick() {
  if (!S.eta) return;
  const left = (S.eta.at - Date.now()) / 1000;
  const where = S.eta.to === 'dropoff' ? (S.viewer ? 'Arriving at the destination' : 'Arriving at your destination') : 'Driver arrives';
  const box = $('#eta');
  if (S.etaStale) {
    // Disconnected: the last estimate, frozen and marked, not a countdown.
    box.dataset.stale = 'true';
    setText('#eta', `${where} around ${fmtTime(new Date(S.eta.at))} (last known; not live while reconnecting)`);
    return;
  }
  delete box.dataset.stale;
  setText('#eta', left > 0 ? `${where} in ${fmtDuration(left)} (at ${fmtTime(new Date(S.eta.at))})` : `${where} any moment now`);
}

// etaStale freezes the ETA while the feed is down and restarts its
// countdown once live again.
function etaStale(stale) {
  if (S.etaStale === stale) return;
  S.etaStale = stale;
  clearInterval(etaTimer);
  etaTick();
  if (!stale && S.eta) etaTimer = setInterval(etaTick, 1000);
}

// --- actions -------------------------------------------------------------------

async function cancelTrip() {
  if (!confirmable()) return;
  const ok = await confirmAction({
    title: 'Cancel this trip?',
    body: S.trip && S.trip.driver_id ? 'Your driver is already on the way.' : 'The search for a driver stops.',
    ok: 'Cancel trip',
    keep: 'Keep trip',
  });
  if (!ok || !S.tripId) return;
  const btn = $('#cancel');
  btn.disabled = true;
  try {
    const snap = await call(`/v1/trips/${S.tripId}/cancel`, { method: 'POST', token: S.token, body: { reason: 'rider_cancelled' } });
    if (snap && snap.trip) applySnapshot(snap, 'action');
    else { addTimeline('cancelled'); setStatus('cancelled'); }
    notice('Trip cancelled.');
  } catch (e) {
    notice(`Could not cancel: ${e.message}`, 'error');
  } finally {
    btn.disabled = false;
  }
}

function confirmable() {
  return !!S.tripId && !S.viewer;
}

async function shareTrip() {
  try {
    const r = await call(`/v1/trips/${S.tripId}/share`, { method: 'POST', token: S.token, body: { ttl: '2h' } });
    let url = r.url || '';
    if (!url && r.token) url = `${location.origin}/#trip=${encodeURIComponent(S.tripId)}&token=${encodeURIComponent(r.token)}`;
    else if (url.startsWith('/')) url = location.origin + url;
    $('#share-url').value = url;
    $('#share-out').hidden = false;
    $('#share-url').focus();
    $('#share-url').select();
  } catch (e) {
    notice(isMissing(e) ? 'Sharing is not available on this server yet.' : `Could not share: ${e.message}`, 'error');
  }
}

async function sendChat(e) {
  e.preventDefault();
  const inp = $('#chat-input');
  const text = inp.value.trim();
  if (!text) return;
  const id = idKey();
  addChat({ id, client_id: id, text, from: 'rider', pending: true });
  inp.value = '';
  try {
    await call(`/v1/trips/${S.tripId}/messages`, { method: 'POST', token: S.token, body: { text, client_id: id } });
  } catch (err) {
    const li = document.querySelector(`#chat li[data-client="${id}"]`);
    if (li) li.classList.add('failed');
    notice(`Message not sent: ${err.message}`, 'error');
  }
}

function addChat(m) {
  if (!m || !m.text) return;
  const key = m.client_id || m.client_msg_id || m.id;
  const existing = key && document.querySelector(`#chat li[data-client="${CSS.escape(key)}"]`);
  if (existing) {
    existing.classList.remove('pending');
    return;
  }
  if (m.id && S.chatSeen.has(m.id)) return;
  if (m.id) S.chatSeen.add(m.id);
  const f = m.from || m.sender || m.role || m.author || '';
  const from = typeof f === 'object' ? f.role || '' : f;
  const mine = !S.viewer && from === 'rider';
  $('#chat').append(el('li', { class: `${mine ? 'mine' : 'theirs'}${m.pending ? ' pending' : ''}`, dataset: { client: key || '' } },
    el('span', { class: 'who', text: mine ? 'You' : 'Driver' }), ' ', el('span', { text: m.text })));
}

async function refetch() {
  try {
    const snap = await call(`/v1/trips/${S.tripId}`, { token: S.token });
    applySnapshot(snap, 'action');
  } catch { /* the feed will catch up */ }
}

// --- connection badge --------------------------------------------------------

let liveTimer;
function setConn(state, detail, transport, st = {}) {
  const box = $('#conn');
  box.dataset.state = state;
  box.dataset.transport = transport || '';
  setText('#conn-state', state);
  setText('#conn-detail', detail ? `— ${detail}` : '');
  if (state === 'live' || state === 'resumed' || state === 'reset') etaStale(false);
  else if (state !== 'idle') etaStale(true);
  clearTimeout(liveTimer);
  if (state === 'resumed' || state === 'reset') {
    const msg = state === 'resumed' ? `Resumed at ${fmtTime(new Date())}: ${st.missed} missed event${st.missed === 1 ? '' : 's'} replayed.` : `Reset at ${fmtTime(new Date())}: state reloaded from a snapshot.`;
    setText('#resume-log', msg);
    box.dataset.missed = String(st.missed ?? '');
    box.dataset.resumes = String((Number(box.dataset.resumes) || 0) + 1);
    liveTimer = setTimeout(() => { box.dataset.state = 'live'; setText('#conn-state', 'live'); }, 8000);
  }
}

main().catch((e) => {
  notice(`Page failed to start: ${e.message}`, 'error');
});
