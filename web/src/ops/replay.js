// Trip replay on the ops map: a past or live trip's GPS trail
// (GET /v1/trips/{id}/path) drawn on the map, a time slider with play,
// pause and speed that moves the driver along the trail by the fixes'
// timestamps, and the trip's events (GET /v1/trips/{id}/events, JSON)
// on a timeline under the slider: the current one highlighted as the
// slider passes it, a click on one moves the slider there. The server
// reads Redis while it still holds the trip and the archive after, so a
// replay works the same for either.
import { L, vehicleIcon, pinIcon, rotate } from '../lib/map.js';
import { bearing, fmtDistance } from '../lib/geo.js';
import { $, el, setText, fmtTime } from '../lib/ui.js';

// The events read for one replay: pages of EVENT_PAGE, at most MAX_PAGES.
const EVENT_PAGE = 1000;
const MAX_PAGES = 20;

// parseTS is an RFC 3339 time in ms (the server's nanosecond fractions
// cut to milliseconds), NaN when it is not one.
export function parseTS(s) {
  if (typeof s !== 'string') return NaN;
  return Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
}

// positionAt is where the driver was at time t (ms): the fix at t, or
// the straight line between the fixes around it; before the first fix
// the first, after the last the last. points: [{lat, lng, t}] by t.
// Returns {lat, lng, heading, index} (index: the last fix at or before
// t, -1 before the first) or null without points.
export function positionAt(points, t) {
  const n = points.length;
  if (!n) return null;
  // The last fix at or before t (binary search).
  let lo = 0;
  let hi = n - 1;
  let i = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid].t <= t) { i = mid; lo = mid + 1; } else hi = mid - 1;
  }
  const heading = (a, b) => (a && b && (a.lat !== b.lat || a.lng !== b.lng) ? bearing(a, b) : null);
  if (i < 0) return { lat: points[0].lat, lng: points[0].lng, heading: heading(points[0], points[1]), index: -1 };
  const a = points[i];
  const b = points[i + 1];
  if (!b || b.t === a.t) return { lat: a.lat, lng: a.lng, heading: heading(points[i - 1], a) ?? heading(a, b), index: i };
  const k = (t - a.t) / (b.t - a.t);
  return { lat: a.lat + (b.lat - a.lat) * k, lng: a.lng + (b.lng - a.lng) * k, heading: heading(a, b), index: i };
}

// eventAt is the index of the last event (in feed order) at or before t
// (ms), -1 before the first. events: [{t}] in feed order, which is time
// order but for events a few ms apart (their times are taken before they
// are published).
export function eventAt(events, t) {
  let i = -1;
  for (let j = 0; j < events.length; j++) if (events[j].t <= t) i = j;
  return i;
}

// fmtOffset shows ms since the replay's start as m:ss (h:mm:ss past an hour).
export function fmtOffset(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

const TERMINAL = new Set(['completed', 'cancelled', 'expired']);
const STATUS = {
  requested: 'requested', awaiting_payment: 'awaiting payment', driver_assigned: 'driver assigned',
  driver_arrived: 'driver arrived', in_progress: 'picked up', completed: 'completed', cancelled: 'cancelled', expired: 'expired',
};

// describe is one line for an event of the trip's feed.
export function describe(ev) {
  const d = ev.data || {};
  switch (ev.type) {
    case 'trip.created': return 'Requested';
    case 'trip.assigned': return `Assigned to ${d.driver_id || 'a driver'}`;
    case 'trip.status': return `Status: ${STATUS[d.status] || d.status || '?'}`;
    case 'trip.cancelled': return `Cancelled${d.reason ? ` (${d.reason})` : ''}`;
    case 'trip.arriving': return 'Driver arriving';
    case 'trip.eta': return `ETA to ${d.leg || 'stop'}: ${Number.isFinite(d.eta_s) ? fmtOffset(d.eta_s * 1000) : '?'}`;
    case 'trip.address_changed': return 'Dropoff changed';
    case 'trip.message': return `Message from ${d.from || d.sender || d.role || '?'}`;
    case 'payment.status': return `Payment: ${d.status || '?'}`;
    default: return ev.type || 'event';
  }
}

export class Replay {
  // opts: {map, api(path) → JSON (the page's authenticated request),
  // onOpen(id), onClose()}. The markup is #replay in ops.html.
  constructor({ map, api, onOpen, onClose }) {
    this.map = map;
    this.api = api;
    this.onOpen = onOpen || (() => {});
    this.onClose = onClose || (() => {});
    this.layer = L.layerGroup();
    this.root = $('#replay');
    this.slider = $('#rp-slider');
    this.playBtn = $('#rp-play');
    this.speed = $('#rp-speed');
    this.list = $('#rp-events');
    this.ticks = $('#rp-ticks');
    this.playing = false;
    this.points = [];
    this.events = [];
    this.current = -2;
    this.slider.addEventListener('input', () => this.seek(Number(this.slider.value), { fromSlider: true }));
    this.slider.addEventListener('keydown', (e) => this.key(e));
    this.playBtn.addEventListener('click', () => (this.playing ? this.pause() : this.play()));
    $('#rp-close').addEventListener('click', () => this.close());
  }

  // open loads trip id (snapshot, trail, events) and shows it at its start.
  async open(id) {
    this.pause();
    this.id = id;
    const seq = (this.seq || 0) + 1;
    this.seq = seq;
    this.root.hidden = false;
    this.root.dataset.state = 'loading';
    setText('#rp-trip', id);
    setText('#rp-note', 'Loading the trail and events…');
    // Nothing of the previous trip stays while this one loads (or fails).
    this.layer.clearLayers();
    this.list.replaceChildren();
    this.ticks.replaceChildren();
    this.slider.disabled = true;
    this.playBtn.disabled = true;
    setText('#rp-status', '');
    setText('#rp-summary', '');
    setText('#rp-current', '');
    this.onOpen(id);
    let snap;
    let path;
    let events;
    try {
      [snap, path, events] = await Promise.all([
        this.api(`/v1/trips/${encodeURIComponent(id)}`),
        this.api(`/v1/trips/${encodeURIComponent(id)}/path`),
        this.loadEvents(id),
      ]);
    } catch (e) {
      if (seq !== this.seq) return;
      this.root.dataset.state = 'error';
      setText('#rp-note', `Replay unavailable: ${e.message}`);
      return;
    }
    if (seq !== this.seq) return; // another trip opened meanwhile
    const trip = (snap && snap.trip) || {};
    this.trip = trip;
    this.points = ((path && path.points) || []).map((p) => ({ lat: Number(p.lat), lng: Number(p.lng), t: parseTS(p.ts) }))
      .filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lng) && Number.isFinite(p.t));
    this.events = events.map((ev) => ({ ...ev, t: parseTS(ev.ts) })).filter((ev) => Number.isFinite(ev.t));
    const times = [...this.points.map((p) => p.t), ...this.events.map((e) => e.t)];
    this.start = times.length ? Math.min(...times) : Date.now();
    this.end = times.length ? Math.max(...times) : this.start;
    this.draw(trip);
    this.renderEvents();
    this.slider.min = '0';
    this.slider.max = String(Math.max(1, this.end - this.start));
    this.slider.step = '1';
    this.slider.dataset.start = String(this.start);
    this.slider.disabled = false;
    this.playBtn.disabled = this.end <= this.start;
    this.root.dataset.points = String(this.points.length);
    this.root.dataset.state = 'ready';
    setText('#rp-status', STATUS[trip.status] || trip.status || '');
    $('#rp-status').dataset.status = trip.status || '';
    setText('#rp-summary', this.summary(trip));
    const notes = [];
    if (!this.points.length) notes.push('No GPS fixes were recorded for this trip (it never had a driver on the way).');
    if (!TERMINAL.has(trip.status)) notes.push('The trip is still going on: this replay ends when it was opened; open it again for what came since.');
    setText('#rp-note', notes.join(' '));
    this.current = -2;
    this.seek(0);
  }

  // loadEvents reads the trip's durable events, oldest first (JSON, no
  // waiting), page after page.
  async loadEvents(id) {
    const out = [];
    let after = '';
    for (let i = 0; i < MAX_PAGES; i++) {
      const q = new URLSearchParams({ limit: String(EVENT_PAGE), wait: '0' });
      if (after) q.set('after', after);
      const r = await this.api(`/v1/trips/${encodeURIComponent(id)}/events?${q}`);
      const evs = (r && r.events) || [];
      out.push(...evs);
      if (evs.length < EVENT_PAGE || !r.next || r.next === after) break;
      after = r.next;
    }
    return out;
  }

  summary(t) {
    const parts = [];
    if (t.driver_id) parts.push(`driver ${t.driver_id}`);
    if (t.rider_id) parts.push(`rider ${t.rider_id}`);
    parts.push(`${this.points.length} fix${this.points.length === 1 ? '' : 'es'}`);
    parts.push(`${this.events.length} event${this.events.length === 1 ? '' : 's'}`);
    parts.push(`${fmtOffset(this.end - this.start)} long`);
    let m = 0;
    for (let i = 1; i < this.points.length; i++) m += L.latLng(this.points[i - 1]).distanceTo(this.points[i]);
    if (m) parts.push(fmtDistance(m));
    parts.push(`from ${fmtTime(new Date(this.start))}`);
    return parts.join(' · ');
  }

  // draw puts the trail, what has been driven, the pickup and dropoff
  // and the driver on the map, and fits the map to them.
  draw(trip) {
    this.layer.clearLayers();
    this.layer.addTo(this.map);
    this.map.getContainer().classList.add('replaying');
    const ll = this.points.map((p) => [p.lat, p.lng]);
    this.line = L.polyline(ll, { color: '#8250df', weight: 4, opacity: 0.45, interactive: false }).addTo(this.layer);
    this.driven = L.polyline([], { color: '#5a32a3', weight: 5, opacity: 0.95, interactive: false }).addTo(this.layer);
    const pins = [];
    for (const [which, label] of [['pickup', 'A'], ['dropoff', 'B']]) {
      const p = trip[which];
      if (p && Number.isFinite(p.lat) && Number.isFinite(p.lng)) {
        L.marker([p.lat, p.lng], { icon: pinIcon(label, which), keyboard: false, interactive: false }).addTo(this.layer);
        pins.push([p.lat, p.lng]);
      }
    }
    this.marker = null;
    if (ll.length) {
      this.marker = L.marker(ll[0], { icon: vehicleIcon('replay-car'), keyboard: false, interactive: false, zIndexOffset: 1000 }).addTo(this.layer);
    }
    this.map.invalidateSize();
    const b = L.latLngBounds([...ll, ...pins]);
    if (b.isValid()) this.map.fitBounds(b, { padding: [40, 40], maxZoom: 17, animate: false });
  }

  renderEvents() {
    const span = Math.max(1, this.end - this.start);
    this.list.replaceChildren(...this.events.map((ev, i) => el('li', { dataset: { id: ev.id || '', type: ev.type } },
      el('button', {
        type: 'button', class: 'rp-event', dataset: { index: String(i) }, title: `${fmtTime(new Date(ev.t))}: move the slider here`,
        onclick: () => { this.pause(); this.seek(ev.t - this.start, { event: i }); },
      }, el('span', { class: 'when', text: fmtOffset(ev.t - this.start) }), ' ', el('span', { text: describe(ev) })))));
    this.ticks.replaceChildren(...this.events.map((ev) => {
      const tick = el('span', { class: 'rp-tick', dataset: { type: ev.type } });
      tick.style.left = `${((ev.t - this.start) / span) * 100}%`;
      return tick;
    }));
    setText('#rp-events-caption', this.events.length ? `Events (${this.events.length}), oldest first: select one to move the slider there` : 'No events recorded.');
  }

  // seek moves the replay to ms since its start: the slider, the driver,
  // the driven line, the current event. opts.event: the event clicked
  // (it becomes the current one even when another shares its time).
  seek(ms, opts = {}) {
    if (!this.root || this.root.hidden) return;
    const max = Math.max(1, this.end - this.start);
    const off = Math.min(max, Math.max(0, Math.round(ms)));
    this.offset = off;
    if (!opts.fromSlider) this.slider.value = String(off);
    const t = this.start + off;
    const label = `${fmtOffset(off)} of ${fmtOffset(max)} · ${fmtTime(new Date(t))}`;
    this.slider.setAttribute('aria-valuetext', label);
    setText('#rp-time', label);
    const pos = positionAt(this.points, t);
    if (pos && this.marker) {
      this.marker.setLatLng([pos.lat, pos.lng]);
      const e = this.marker.getElement();
      if (e) e.classList.toggle('no-heading', pos.heading === null);
      if (pos.heading !== null) rotate(this.marker, pos.heading);
      this.pos = pos;
      const done = this.points.slice(0, pos.index + 1).map((p) => [p.lat, p.lng]);
      if (pos.index >= 0) done.push([pos.lat, pos.lng]);
      this.driven.setLatLngs(done);
    }
    const cur = opts.event ?? eventAt(this.events, t);
    if (cur !== this.current) {
      this.current = cur;
      for (const [i, li] of [...this.list.children].entries()) {
        const on = i === cur;
        li.classList.toggle('current', on);
        const b = li.firstChild;
        if (on) b.setAttribute('aria-current', 'step');
        else b.removeAttribute('aria-current');
        li.classList.toggle('past', i < cur);
      }
      for (const [i, tk] of [...this.ticks.children].entries()) tk.classList.toggle('current', i === cur);
      const li = this.list.children[cur];
      // Keep the current event in view inside the list, not the page.
      if (li) this.list.scrollTop = Math.max(0, li.offsetTop - this.list.offsetTop - this.list.clientHeight / 2);
      setText('#rp-current', cur >= 0 ? `Now: ${describe(this.events[cur])}` : 'Before the first event');
    }
  }

  // key gives the slider steps a person can use: arrows one second (with
  // Shift ten), Page Up/Down a tenth of the trip, Home/End the ends;
  // Space plays or pauses.
  key(e) {
    const max = Math.max(1, this.end - this.start);
    const step = e.shiftKey ? 10000 : 1000;
    const big = Math.max(step, max / 10);
    const moves = { ArrowRight: step, ArrowUp: step, ArrowLeft: -step, ArrowDown: -step, PageUp: big, PageDown: -big };
    let to;
    if (e.key in moves) to = this.offset + moves[e.key];
    else if (e.key === 'Home') to = 0;
    else if (e.key === 'End') to = max;
    else if (e.key === ' ') {
      e.preventDefault();
      if (this.playing) this.pause(); else this.play();
      return;
    } else return;
    e.preventDefault();
    this.pause();
    this.seek(to);
  }

  play() {
    if (this.playing || this.end <= this.start) return;
    if (this.offset >= this.end - this.start) this.seek(0);
    this.playing = true;
    setText(this.playBtn, 'Pause');
    this.root.dataset.playing = 'true';
    let last = performance.now();
    const tick = (now) => {
      if (!this.playing) return;
      const dt = now - last;
      last = now;
      const next = this.offset + dt * (Number(this.speed.value) || 1);
      this.seek(next);
      if (next >= this.end - this.start) this.pause();
      else this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }

  pause() {
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = 0;
    if (!this.playing) return;
    this.playing = false;
    setText(this.playBtn, 'Play');
    delete this.root.dataset.playing;
  }

  close() {
    this.pause();
    this.seq = (this.seq || 0) + 1;
    this.root.hidden = true;
    this.id = null;
    this.layer.clearLayers();
    this.layer.remove();
    this.map.getContainer().classList.remove('replaying');
    this.map.invalidateSize();
    this.onClose();
  }
}
