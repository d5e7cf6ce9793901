// Past trips on the ops page: the archive's list of trips
// (GET /v1/trips?status=&driver=&rider=&from=&to=&limit=&cursor=), newest
// first, a page at a time ("Older trips" follows the cursor), each with a
// Replay button; and a trip ID field that opens any trip's replay, live or
// archived.
import { $, el, setText } from '../lib/ui.js';

const PAGE = 20;
const SHORT = { awaiting_payment: 'awaiting pay', driver_assigned: 'assigned', driver_arrived: 'arrived', in_progress: 'on trip' };

// isoOf turns a datetime-local value (the browser's time zone) into RFC
// 3339, "" when empty or unreadable.
function isoOf(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

// fmtWhen is a short time: hours and minutes today, else the day too.
function fmtWhen(d) {
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === new Date().toDateString()) return hm;
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${hm}`;
}

export class TripHistory {
  // opts: {api(path) → JSON, onReplay(id)}. The markup is the
  // "Past trips" card of ops.html.
  constructor({ api, onReplay }) {
    this.api = api;
    this.onReplay = onReplay;
    this.tbody = $('#history');
    this.more = $('#h-more');
    this.next = '';
    this.count = 0;
    $('#history-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.search();
    });
    this.more.addEventListener('click', () => this.load(this.next));
    $('#open-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const id = $('#open-id').value.trim();
      if (id) this.onReplay(id);
    });
  }

  query(cursor) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    const put = (k, v) => { if (v) q.set(k, v); };
    put('status', $('#h-status').value);
    put('driver', $('#h-driver').value.trim());
    put('rider', $('#h-rider').value.trim());
    put('from', isoOf($('#h-from').value));
    put('to', isoOf($('#h-to').value));
    put('cursor', cursor);
    return q;
  }

  // search starts the list over with the form's filters.
  search() {
    this.tbody.replaceChildren();
    this.count = 0;
    this.next = '';
    return this.load('');
  }

  async load(cursor) {
    this.more.hidden = true;
    setText('#history-caption', 'Loading…');
    let page;
    try {
      page = await this.api(`/v1/trips?${this.query(cursor)}`);
    } catch (e) {
      setText('#history-caption', `Past trips unavailable: ${e.message}`);
      return;
    }
    const trips = (page && page.trips) || [];
    this.tbody.append(...trips.map((t) => this.row(t)));
    this.count += trips.length;
    this.next = (page && page.next) || '';
    this.more.hidden = !this.next;
    setText('#history-caption', this.count
      ? `${this.count} trip${this.count === 1 ? '' : 's'} from the archive, newest first${this.next ? '; more below' : ''}`
      : 'No trips match.');
  }

  row(t) {
    const created = Date.parse(t.created_at || '');
    return el('tr', { dataset: { trip: t.id, status: t.status || '' } },
      el('td', { class: 'id', title: t.id, text: t.id.length > 12 ? `${t.id.slice(0, 11)}…` : t.id }),
      el('td', {}, el('span', { class: 'badge', dataset: { status: t.status || '' }, text: SHORT[t.status] || t.status || '?' })),
      el('td', { class: 'driver', title: t.driver_id || '', text: t.driver_id ? (t.driver_id.length > 9 ? `…${t.driver_id.slice(-7)}` : t.driver_id) : '—' }),
      el('td', { class: 'age', title: Number.isFinite(created) ? new Date(created).toLocaleString() : '', text: Number.isFinite(created) ? fmtWhen(new Date(created)) : '—' }),
      el('td', { class: 'actions' }, el('button', {
        type: 'button', text: 'Replay', 'aria-label': `Replay trip ${t.id}`, onclick: () => this.onReplay(t.id),
      })));
  }
}
