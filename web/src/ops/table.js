// The ops trips table: rows that stay put under the pointer. Rows are in
// a stable order (newest created first; updates never move a row); while
// the pointer is on the table or focus is in it, rows only change in
// place (status, driver, age) and new or filtered-out rows wait until the
// pointer leaves; rows new since the page loaded are marked for a while.
// Filters: status, driver, age and a free-text search.
import { el, setText } from '../lib/ui.js';

const TERMINAL = new Set(['completed', 'cancelled', 'expired']);
const MAX_ROWS = 50;
// Short status labels keep every row one line high.
const SHORT = { awaiting_payment: 'awaiting pay', driver_assigned: 'assigned', driver_arrived: 'arrived', in_progress: 'on trip' };
const NEW_MS = 30000;
const AGES = { '5m': 5 * 60e3, '15m': 15 * 60e3, '1h': 60 * 60e3 };

const created = (t) => Date.parse(t.created_at || t.updated_at || 0) || 0;

export function fmtAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export class TripsTable {
  // opts: {table, tbody, caption, note, filters: {status, driver, age,
  // search}, onAction(trip, action)}.
  constructor(opts) {
    this.o = opts;
    this.trips = new Map();
    this.firstSeen = new Map();
    this.loaded = false;
    this.hover = false;
    this.focus = false;
    this.pending = false;
    const t = opts.table;
    t.addEventListener('pointerenter', (e) => { this.hover = true; this.pauseNote(); this.pin(e); });
    t.addEventListener('pointermove', (e) => this.pin(e));
    t.addEventListener('pointerleave', () => { this.hover = false; this.anchor = null; this.render(); });
    // The user scrolling moves the row on purpose: follow, don't undo.
    for (const ev of ['wheel', 'touchmove', 'keydown']) window.addEventListener(ev, () => { this.userScroll = performance.now(); }, { passive: true });
    t.addEventListener('focusin', () => { this.focus = true; this.pauseNote(); });
    t.addEventListener('focusout', (e) => {
      if (t.contains(e.relatedTarget)) return;
      this.focus = false;
      this.render();
    });
    for (const f of Object.values(opts.filters)) {
      f.addEventListener('input', () => this.render(true));
      f.addEventListener('change', () => this.render(true));
    }
    // Ages tick; rows don't move for it.
    setInterval(() => this.render(), 5000);
  }

  get paused() { return this.hover || this.focus; }

  // pin anchors the row under the pointer: while the pointer is on the
  // table, anything that changes height above it (a counter line that
  // wraps, a note) is offset by scrolling the panel, so the row — and the
  // button the operator is about to click — stays where it was.
  pin(e) {
    const tr = e.target && e.target.closest && e.target.closest('tr[data-trip]');
    if (!tr || tr === (this.anchor && this.anchor.tr)) return;
    this.anchor = { tr, top: tr.getBoundingClientRect().top, scroller: scrollerOf(tr) };
    if (!this.raf) this.raf = requestAnimationFrame(() => this.hold());
  }

  hold() {
    this.raf = 0;
    const a = this.anchor;
    if (!a || !this.hover || !a.tr.isConnected) return;
    const top = a.tr.getBoundingClientRect().top;
    const d = top - a.top;
    if (Math.abs(d) >= 0.5) {
      if (performance.now() - (this.userScroll || 0) < 400) a.top = top;
      else a.scroller.scrollTop += d;
    }
    this.raf = requestAnimationFrame(() => this.hold());
  }

  // upsert keeps the newest version of a trip: a full trip (with a
  // version) replaces an older one whole, so a field the server dropped
  // (driver_id after a reassign) goes too; partial updates merge.
  upsert(t) {
    if (!t || !t.id) return false;
    const old = this.trips.get(t.id);
    if (old && Number.isFinite(t.version) && Number.isFinite(old.version) && t.version < old.version) return false;
    if (old && Number.isFinite(t.version) && old.version === t.version && old.status === t.status) return false;
    this.trips.set(t.id, Number.isFinite(t.version) ? { ...t } : { ...(old || {}), ...t });
    if (!this.firstSeen.has(t.id)) this.firstSeen.set(t.id, this.loaded ? Date.now() : 0);
    return true;
  }

  // markLoaded ends the initial load: trips first seen from now on are new.
  markLoaded() { this.loaded = true; }

  get(id) { return this.trips.get(id); }

  matches(t, now) {
    const f = this.o.filters;
    const st = f.status.value;
    if (st === 'open' && TERMINAL.has(t.status)) return false;
    if (st && st !== 'open' && st !== 'all' && t.status !== st) return false;
    const drv = f.driver.value.trim().toLowerCase();
    if (drv === '-' || drv === 'none') {
      if (t.driver_id) return false;
    } else if (drv && !(t.driver_id || '').toLowerCase().includes(drv)) return false;
    const age = AGES[f.age.value];
    if (age && now - created(t) > age) return false;
    const q = f.search.value.trim().toLowerCase();
    if (q) {
      const hay = [t.id, t.rider_id, t.driver_id, t.kind, t.status, t.pickup && t.pickup.address, t.dropoff && t.dropoff.address]
        .filter(Boolean).join(' ').toLowerCase();
      if (!hay.includes(q)) return false;
    }
    return true;
  }

  // rows is what the table would show unpaused: filtered, newest created
  // first (ties by id, so the order never flips), at most MAX_ROWS.
  rows(now = Date.now()) {
    return [...this.trips.values()].filter((t) => this.matches(t, now))
      .sort((a, b) => created(b) - created(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, MAX_ROWS);
  }

  pauseNote() {
    if (!this.paused) return;
    const n = this.o.note;
    n.dataset.paused = 'true';
    setText(n, this.pending ? 'Paused under the pointer · new rows waiting' : 'Paused under the pointer');
  }

  // render brings the table up to date; paused, only in place.
  render(force = false) {
    const now = Date.now();
    const body = this.o.tbody;
    const want = this.rows(now);
    const have = new Map([...body.children].map((tr) => [tr.dataset.trip, tr]));
    if (this.paused && !force) {
      for (const [id, tr] of have) {
        const t = this.trips.get(id);
        if (t) this.fill(tr, t, now);
      }
      const ids = want.map((t) => t.id).join(',');
      this.pending = ids !== [...have.keys()].join(',');
      this.pauseNote();
      return;
    }
    this.pending = false;
    delete this.o.note.dataset.paused;
    setText(this.o.note, '');
    const order = [];
    for (const t of want) {
      let tr = have.get(t.id);
      if (!tr) tr = el('tr', { dataset: { trip: t.id } });
      this.fill(tr, t, now);
      order.push(tr);
    }
    // Move rows only when the order changed: a moved row loses focus.
    const same = order.length === body.children.length && order.every((tr, i) => body.children[i] === tr);
    if (!same) body.replaceChildren(...order);
    const total = this.trips.size;
    setText(this.o.caption, total ? `${want.length} of ${total} trips shown, newest first` : 'No trips yet.');
  }

  // fill writes a trip into its row, touching only cells that changed.
  fill(tr, t, now) {
    if (!tr.cells.length) {
      // Ids are long: the cell shows the start, the title the whole id.
      tr.append(el('td', { class: 'id', title: t.id }, el('span', { text: t.id.length > 12 ? `${t.id.slice(0, 11)}…` : t.id })),
        el('td', {}, el('span', { class: 'badge' })), el('td', { class: 'driver' }), el('td', { class: 'age' }), el('td', { class: 'actions' }));
    }
    const seen = this.firstSeen.get(t.id);
    const isNew = seen > 0 && now - seen < NEW_MS;
    if (tr.classList.contains('new') !== isNew) {
      tr.classList.toggle('new', isNew);
      const idCell = tr.cells[0];
      const tag = idCell.querySelector('.new-tag');
      if (isNew && !tag) idCell.prepend(el('span', { class: 'new-tag', text: 'new' }), ' '); // first: the id may be cut
      else if (!isNew && tag) {
        tag.nextSibling.remove();
        tag.remove();
      }
    }
    tr.dataset.status = t.status || '';
    const badge = tr.cells[1].firstChild;
    if (badge.dataset.status !== (t.status || '')) {
      badge.dataset.status = t.status || '';
      badge.textContent = SHORT[t.status] || t.status || '?';
    }
    // Driver ids share their start (a fleet prefix): show the end.
    const drv = t.driver_id || '';
    setIf(tr.cells[2], drv.length > 9 ? `…${drv.slice(-7)}` : drv || '—');
    if (tr.cells[2].title !== (t.driver_id || '')) tr.cells[2].title = t.driver_id || '';
    const c = created(t);
    setIf(tr.cells[3], c ? fmtAge(now - c) : '—');
    const acts = [];
    if (!TERMINAL.has(t.status)) acts.push('cancel');
    if (['driver_assigned', 'driver_arrived'].includes(t.status)) acts.push('reassign');
    const cell = tr.cells[4];
    if (cell.dataset.acts !== acts.join(',')) {
      cell.dataset.acts = acts.join(',');
      cell.replaceChildren(...acts.map((a) => el('button', {
        type: 'button', text: a === 'cancel' ? 'Cancel' : 'Reassign', 'aria-label': `${a === 'cancel' ? 'Cancel' : 'Reassign'} trip ${t.id}`,
        onclick: () => this.o.onAction(this.trips.get(t.id) || t, a),
      })));
    }
  }
}

// scrollerOf is the element that scrolls e: the nearest scrollable
// ancestor, else the page.
function scrollerOf(e) {
  for (let p = e.parentElement; p; p = p.parentElement) {
    const o = getComputedStyle(p).overflowY;
    if ((o === 'auto' || o === 'scroll') && p.scrollHeight > p.clientHeight) return p;
  }
  return document.scrollingElement;
}

function setIf(e, text) {
  if (e.textContent !== text) e.textContent = text;
}
