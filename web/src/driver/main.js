// Driver page: sign in with a dev token, go online, share location from
// the Geolocation API or a simulated drive along the roads, receive offers
// (accept/decline) and run the trip (arrived, picked up, complete).
import '../style.css';
import { createMap, L, pinIcon } from '../lib/map.js';
import { request, isMissing, connectDriver, watchTrip } from '@hextrack/client';
import * as auth from '../lib/auth.js';
import { MovingMarker } from '../lib/move.js';
import { RoadGraph } from '../lib/roads.js';
import { $, el, setText, notice, fmtTime } from '../lib/ui.js';
import { bearing, distance, offset, fmtDuration } from '../lib/geo.js';

const SIM_SPEED = 11; // m/s, about 40 km/h
const SIM_TICK = 1000;

const S = {
  id: '', token: null, online: false, pos: null, heading: 0, seq: 0,
  channel: null, me: null, graph: null, route: [], source: 'sim',
  offer: null, trip: null, tripFeed: null, pins: {}, gpsWatch: null, lastAck: null,
};
window.hextrack = { state: S };

let map;
let roadsP;

async function main() {
  const r = await createMap($('#map'), {
    onStatus: (s) => setText('#map-status', s.state === 'ok' ? '' : s.state === 'loading' ? 'Loading roads…' : `Road layer unavailable (${s.reason}); the simulated drive goes in straight lines.`),
  });
  map = r.map;
  roadsP = r.roads.then((x) => {
    // A server without a map serves an empty collection: no graph then,
    // and the simulated drive goes in straight lines.
    if (x.ok && x.geojson) {
      const g = new RoadGraph(x.geojson);
      if (g.size) S.graph = g;
    }
    return x;
  });
  map.on('click', (e) => {
    if (S.source !== 'sim') return;
    setPos({ lat: e.latlng.lat, lng: e.latlng.lng }, S.heading);
    S.route = [];
    notice('Simulated drive restarts here.');
  });
  wire();
  const id = localStorage.getItem('hextrack.driver.id') || auth.stableSub('driver', 'd_');
  $('#driver-id').value = id;
  const t = auth.stored('driver');
  if (t && auth.decode(t).sub === id) signedIn(id, t);
}

function wire() {
  $('#signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = $('#driver-id').value.trim();
    try {
      const t = await auth.devToken('driver', id);
      if (!t) {
        notice('This server is not in dev mode: paste a driver token instead.', 'error');
        return;
      }
      signedIn(id, t);
    } catch (err) {
      notice(`Sign-in failed: ${err.message}`, 'error');
    }
  });
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('#token-input').value.trim();
    try {
      auth.store('driver', t);
      signedIn(auth.decode(t).sub, t);
    } catch (err) {
      notice(err.message, 'error');
    }
  });
  $('#go-online').addEventListener('click', () => goOnline(true));
  $('#go-offline').addEventListener('click', () => goOnline(false));
  $('#signout').addEventListener('click', signOut);
  for (const r of document.querySelectorAll('input[name=source]')) {
    r.addEventListener('change', () => setSource(r.value));
  }
  $('#channel').value = localStorage.getItem('hextrack.driver.channel') || 'auto';
  $('#channel').addEventListener('change', () => {
    localStorage.setItem('hextrack.driver.channel', $('#channel').value);
    if (S.channel) S.channel.setMode($('#channel').value);
  });
  $('#accept').addEventListener('click', () => answerOffer(true));
  $('#decline').addEventListener('click', () => answerOffer(false));
  for (const a of ['arrived', 'pickup', 'complete']) $(`#${a}`).addEventListener('click', () => tripAction(a));
  $('#drop').addEventListener('click', () => tripAction('decline'));
  $('#chat-form').addEventListener('submit', sendChat);
}

function signedIn(id, token) {
  S.id = id;
  S.token = token;
  localStorage.setItem('hextrack.driver.id', id);
  $('#signin').hidden = true;
  $('#console').hidden = false;
  setText('#me', id);
  setConn('offline', `token valid until ${fmtTime(new Date(auth.decode(token).exp * 1000))}`);
  S.seq = Number(localStorage.getItem(`hextrack.driver.${id}.seq`)) || 0;
  if (localStorage.getItem(`hextrack.driver.${id}.online`) === '1') goOnline(true);
}

function signOut() {
  goOnline(false);
  auth.forget('driver');
  S.token = null;
  $('#signin').hidden = false;
  $('#console').hidden = true;
  setConn('idle', 'signed out');
}

async function goOnline(on) {
  if (!S.token) return;
  localStorage.setItem(`hextrack.driver.${S.id}.online`, on ? '1' : '0');
  S.online = on;
  $('#go-online').hidden = on;
  $('#go-offline').hidden = !on;
  if (on) {
    if (!S.pos) {
      await roadsP;
      setPos(startPoint(), 0);
    }
    if (S.channel) S.channel.close();
    // The SDK's driver channel: WebSocket or REST ("auto" goes back to
    // the socket when it can), pings buffered until acked, commands
    // replayed until handled; the last handled one kept in localStorage.
    const ch = connectDriver(S.id, {
      mode: $('#channel').value,
      storage: localStorage,
      tokenProvider: ({ refresh }) => (refresh ? renewToken() : S.token),
    });
    S.channel = ch;
    ch.on('command', onCommand);
    ch.on('status', (s) => {
      if (ch === S.channel && s.state !== 'closed') setConn(s.state, `${s.via ? `${s.via.toUpperCase()}: ` : ''}${s.detail || ''}`);
    });
    ch.on('ack', (seq) => { S.lastAck = seq; setText('#acked', `seq ${seq} at ${fmtTime(new Date())}`); });
    ch.on('error', (e) => notice(`Server: ${e.message || e.code}`, 'error'));
    ping();
    await setStatus('available');
    setSource(S.source);
  } else {
    stopMoving();
    if (S.channel) {
      S.channel.flush();
      S.channel.close();
      S.channel = null;
    }
    await setStatus('offline');
    setConn('offline', 'not sharing location');
  }
}

// renewToken replaces a token the server rejected (a restart with a new
// secret): a fresh dev token for the same driver, or null (sign in again),
// which stops the SDK's connections with an AuthError.
async function renewToken() {
  const t = await auth.renew('driver', S.id);
  if (t) S.token = t;
  else notice('The server rejected the sign-in token: sign in again.', 'error');
  return t;
}

async function setStatus(status) {
  try {
    await request(`/v1/drivers/${encodeURIComponent(S.id)}/status`, { method: 'PUT', token: S.token, body: { status } });
    showStatus(status);
  } catch (e) {
    notice(`Status not changed: ${e.message}`, 'error');
  }
}

// showStatus shows the driver's status; the server makes a driver on_trip
// when it gets a trip and available again when the trip ends.
function showStatus(status) {
  setText('#status', status);
  $('#status').dataset.status = status;
}

function startPoint() {
  if (S.graph && S.graph.size) {
    const c = map.getCenter();
    const i = S.graph.nearest({ lat: c.lat, lng: c.lng });
    return S.graph.pts[i];
  }
  const c = map.getCenter();
  return { lat: c.lat, lng: c.lng };
}

// --- location ------------------------------------------------------------------

function setPos(p, heading) {
  S.pos = { lat: p.lat, lng: p.lng };
  if (Number.isFinite(heading)) S.heading = heading;
  if (!S.me) S.me = new MovingMarker(map, { ...S.pos, heading: S.heading }, { cls: 'self', title: 'You' });
  else S.me.update({ ...S.pos, heading: S.heading });
  setText('#pos', `${p.lat.toFixed(5)}, ${p.lng.toFixed(5)}`);
}

function ping(extra = {}) {
  if (!S.online || !S.pos || !S.channel) return;
  // Seqs increase across reloads too: never below the clock in ms.
  S.seq = Math.max(S.seq + 1, Date.now());
  localStorage.setItem(`hextrack.driver.${S.id}.seq`, String(S.seq));
  S.channel.send({ lat: +S.pos.lat.toFixed(6), lng: +S.pos.lng.toFixed(6), ts: new Date().toISOString(), seq: S.seq, heading: Math.round(S.heading) % 360, ...extra });
  setText('#pings', `${S.channel.sent} sent, ${S.channel.queued} queued`);
}

let simTimer;
function setSource(src) {
  S.source = src;
  stopMoving();
  if (!S.online) return;
  if (src === 'gps') {
    if (!navigator.geolocation) {
      notice('This browser has no Geolocation API; using the simulated drive.', 'error');
      document.querySelector('input[value=sim]').checked = true;
      setSource('sim');
      return;
    }
    S.gpsWatch = navigator.geolocation.watchPosition((p) => {
      const c = p.coords;
      const h = Number.isFinite(c.heading) ? c.heading : S.heading;
      setPos({ lat: c.latitude, lng: c.longitude }, h);
      const extra = { accuracy: Math.round(c.accuracy) };
      if (Number.isFinite(c.speed)) extra.speed = c.speed;
      ping(extra);
    }, (err) => {
      notice(`Location unavailable (${err.message}); using the simulated drive.`, 'error');
      document.querySelector('input[value=sim]').checked = true;
      setSource('sim');
    }, { enableHighAccuracy: true, maximumAge: 1000, timeout: 20000 });
  } else {
    simTimer = setInterval(simStep, SIM_TICK);
  }
}

function stopMoving() {
  clearInterval(simTimer);
  if (S.gpsWatch !== null && navigator.geolocation) navigator.geolocation.clearWatch(S.gpsWatch);
  S.gpsWatch = null;
}

// simStep advances the simulated car SIM_SPEED meters along its route:
// towards the pickup or dropoff of the current trip, else a random wander.
function simStep() {
  if (!S.pos) return;
  const target = simTarget();
  if (!S.route.length || (target && S.routeTarget !== target.key)) {
    S.routeTarget = target ? target.key : '';
    if (target) S.route = (S.graph && S.graph.path(S.pos, target.p)) || [target.p];
    else if (S.graph) S.route = S.graph.wander(S.pos, 2000) || [];
    // No road to follow (no map, or a dead end): a straight leg.
    if (!S.route.length) S.route = [offset(S.pos, 600, (S.heading + 90) % 360)];
    if (target) S.route.push(target.p);
  }
  if (target && distance(S.pos, target.p) < 15) {
    ping({ speed: 0 });
    return;
  }
  let left = SIM_SPEED * (SIM_TICK / 1000);
  let p = S.pos;
  let h = S.heading;
  while (left > 0 && S.route.length) {
    const nx = S.route[0];
    const d = distance(p, nx);
    if (d > 0.5) h = bearing(p, nx);
    if (d <= left) {
      p = nx;
      left -= d;
      S.route.shift();
    } else {
      p = offset(p, left, h);
      left = 0;
    }
  }
  setPos(p, h);
  ping({ speed: SIM_SPEED });
}

function simTarget() {
  const t = S.trip;
  if (!t || !t.trip) return null;
  const st = t.trip.status;
  if (st === 'driver_assigned' && t.trip.pickup) return { key: `p:${t.trip.id}`, p: t.trip.pickup };
  if (st === 'in_progress' && t.trip.dropoff) return { key: `d:${t.trip.id}:${t.trip.dropoff.lat},${t.trip.dropoff.lng}`, p: t.trip.dropoff };
  return null;
}

// --- commands -------------------------------------------------------------------

function onCommand(cmd) {
  const d = cmd.data || {};
  const tripId = d.trip_id || d.trip || (d.trip && d.trip.id);
  log(`${cmd.type}${tripId ? ` ${typeof tripId === 'string' ? tripId : ''}` : ''}`);
  switch (cmd.type) {
    case 'offer':
      showOffer(cmd);
      break;
    case 'trip.cancelled':
    case 'trip.reassigned':
      if (S.offer && offerTrip(S.offer) === tripId) hideOffer();
      if (S.trip && S.trip.trip.id === tripId) {
        notice(cmd.type === 'trip.cancelled' ? 'The trip was cancelled.' : 'The trip was reassigned to another driver.', 'error');
        endTrip();
      }
      break;
    case 'trip.address_changed':
      if (S.trip && S.trip.trip.id === tripId) {
        if (d.dropoff) S.trip.trip.dropoff = d.dropoff;
        notice('The rider changed the dropoff.');
        drawTrip();
      }
      break;
    default:
  }
}

function offerTrip(cmd) {
  const d = cmd.data || {};
  return d.trip_id || (typeof d.trip === 'string' ? d.trip : d.trip && d.trip.id) || '';
}

let offerTimer;
function showOffer(cmd) {
  S.offer = cmd;
  const d = cmd.data || {};
  const trip = typeof d.trip === 'object' && d.trip ? d.trip : d;
  $('#offer').hidden = false;
  setText('#offer-trip', `${offerTrip(cmd)}${trip.kind ? ` (${trip.kind})` : ''}`);
  const p = trip.pickup || d.pickup;
  setText('#offer-pickup', p ? `${p.address || `${Number(p.lat).toFixed(5)}, ${Number(p.lng).toFixed(5)}`}${S.pos ? ` — ${Math.round(distance(S.pos, p))} m away` : ''}` : '—');
  const until = d.expires_at ? Date.parse(d.expires_at) : Date.now() + 1000 * Number(d.timeout_s || d.ttl_s || 15);
  clearInterval(offerTimer);
  const tick = () => {
    const left = (until - Date.now()) / 1000;
    setText('#offer-left', left > 0 ? fmtDuration(left) : 'expired');
    if (left <= -1) hideOffer();
  };
  tick();
  offerTimer = setInterval(tick, 500);
  $('#accept').focus();
}

function hideOffer() {
  clearInterval(offerTimer);
  S.offer = null;
  $('#offer').hidden = true;
}

async function answerOffer(accept) {
  const cmd = S.offer;
  if (!cmd) return;
  const trip = offerTrip(cmd);
  hideOffer();
  try {
    const snap = await act(accept ? 'accept' : 'decline', trip);
    if (accept) startTrip(snap && snap.trip ? snap : await request(`/v1/trips/${encodeURIComponent(trip)}`, { token: S.token }));
    else log(`declined ${trip}`);
  } catch (e) {
    notice(`${accept ? 'Accept' : 'Decline'} failed: ${e.message}`, 'error');
  }
}

function startTrip(snap) {
  S.trip = snap;
  showStatus('on_trip');
  $('#trip').hidden = false;
  setText('#trip-id', snap.trip.id);
  drawTrip();
  if (S.tripFeed) S.tripFeed.close();
  const feed = watchTrip(snap.trip.id, {
    lastEventId: snap.feed_position,
    tokenProvider: ({ refresh }) => (refresh ? renewToken() : S.token),
  });
  S.tripFeed = feed;
  feed.on('event', (env) => {
    if (feed !== S.tripFeed || !S.trip) return;
    const d = env.data || {};
    if (env.type === 'snapshot' || env.type === 'reset') {
      S.trip = { ...S.trip, ...d };
      drawTrip();
      return;
    }
    if (env.type === 'trip.message') addChat(d.message || d);
    if (d.trip) S.trip.trip = { ...S.trip.trip, ...d.trip };
    const st = d.status || (d.trip && d.trip.status);
    if (st) S.trip.trip.status = st;
    if (env.type === 'trip.address_changed' && d.dropoff) S.trip.trip.dropoff = d.dropoff;
    if (env.type === 'trip.cancelled') S.trip.trip.status = 'cancelled';
    drawTrip();
  });
}

function drawTrip() {
  const t = S.trip && S.trip.trip;
  if (!t) return;
  const st = t.status;
  setText('#trip-status', st);
  $('#trip-status').dataset.status = st;
  const fmt = (p) => (p ? p.address || `${Number(p.lat).toFixed(5)}, ${Number(p.lng).toFixed(5)}` : '—');
  setText('#trip-pickup', fmt(t.pickup));
  setText('#trip-dropoff', fmt(t.dropoff));
  for (const k of ['pickup', 'dropoff']) {
    if (!t[k]) continue;
    if (!S.pins[k]) S.pins[k] = L.marker([t[k].lat, t[k].lng], { icon: pinIcon(k === 'pickup' ? 'A' : 'B', k), title: k, keyboard: false }).addTo(map);
    else S.pins[k].setLatLng([t[k].lat, t[k].lng]);
  }
  $('#arrived').hidden = st !== 'driver_assigned';
  $('#pickup').hidden = st !== 'driver_arrived' && st !== 'driver_assigned';
  $('#complete').hidden = st !== 'in_progress';
  $('#drop').hidden = !['driver_assigned', 'driver_arrived'].includes(st);
  if (['completed', 'cancelled', 'expired'].includes(st) || (st === 'requested' && t.driver_id !== S.id)) {
    notice(`Trip ${st}.`);
    endTrip();
  }
}

function endTrip() {
  if (S.trip && S.online) showStatus('available');
  if (S.tripFeed) S.tripFeed.close();
  S.tripFeed = null;
  S.trip = null;
  S.route = [];
  for (const m of Object.values(S.pins)) m.remove();
  S.pins = {};
  $('#trip').hidden = true;
  $('#chat').replaceChildren();
}

async function tripAction(action) {
  const t = S.trip && S.trip.trip;
  if (!t) return;
  try {
    const snap = await act(action, t.id);
    if (snap && snap.trip) {
      S.trip = { ...S.trip, ...snap };
      drawTrip();
    }
  } catch (e) {
    notice(isMissing(e) ? `This server has no ${action} action yet.` : `${action} failed: ${e.message}`, 'error');
  }
}

// act performs a trip action over the driver channel (its WebSocket, or
// REST), or over REST when offline.
function act(action, tripId) {
  if (S.channel) return S.channel.act(action, tripId);
  return request(`/v1/trips/${encodeURIComponent(tripId)}/${action}`, { method: 'POST', token: S.token });
}

async function sendChat(e) {
  e.preventDefault();
  const t = S.trip && S.trip.trip;
  const text = $('#chat-input').value.trim();
  if (!t || !text) return;
  $('#chat-input').value = '';
  const id = `${Date.now()}-${Math.random().toString(16).slice(2)}`;
  addChat({ client_id: id, text, from: 'driver' });
  try {
    await request(`/v1/trips/${encodeURIComponent(t.id)}/messages`, { method: 'POST', token: S.token, body: { text, client_id: id } });
  } catch (err) {
    notice(`Message not sent: ${err.message}`, 'error');
  }
}

function addChat(m) {
  if (!m || !m.text) return;
  const key = m.client_id || m.client_msg_id || m.id || '';
  if (key && document.querySelector(`#chat li[data-client="${CSS.escape(key)}"]`)) return;
  const f = m.from || m.sender || m.role || '';
  const mine = (typeof f === 'object' ? f.role : f) === 'driver';
  $('#chat').append(el('li', { class: mine ? 'mine' : 'theirs', dataset: { client: key } },
    el('span', { class: 'who', text: mine ? 'You' : 'Rider' }), ' ', el('span', { text: m.text })));
}

function log(text) {
  const box = $('#log');
  box.prepend(el('li', { text: `${fmtTime(new Date())} ${text}` }));
  while (box.children.length > 20) box.lastChild.remove();
}

function setConn(state, detail) {
  const box = $('#conn');
  box.dataset.state = state;
  setText('#conn-state', state);
  setText('#conn-detail', detail ? `— ${detail}` : '');
  if (S.channel) setText('#pings', `${S.channel.sent} sent, ${S.channel.queued} queued`);
}

main().catch((e) => notice(`Page failed to start: ${e.message}`, 'error'));
