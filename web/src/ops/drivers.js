// The ops driver list: the drivers on the map with their status and how
// long ago each last reported, searchable by id or status. Sorted by id so
// rows don't jump as positions stream in; redrawn every couple of seconds,
// not while the pointer is on it.
import { el, setText } from '../lib/ui.js';
import { fmtAge } from './table.js';

const MAX_ROWS = 100;
// A driver silent this long is shown as stale.
const STALE_MS = 30000;

export class DriverList {
  // opts: {list (table), tbody, search (input), caption}; drivers() returns
  // [{id, status, last_seen}] for the drivers known to the page.
  constructor(opts, drivers) {
    this.o = opts;
    this.drivers = drivers;
    this.hover = false;
    opts.list.addEventListener('pointerenter', () => { this.hover = true; });
    opts.list.addEventListener('pointerleave', () => { this.hover = false; });
    opts.search.addEventListener('input', () => this.render(true));
    setInterval(() => this.render(), 2000);
  }

  render(force = false) {
    if (this.hover && !force) return;
    const now = Date.now();
    const q = this.o.search.value.trim().toLowerCase();
    const all = this.drivers();
    const rows = all.filter((d) => !q || d.id.toLowerCase().includes(q) || (d.status || '').includes(q))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const shown = rows.slice(0, MAX_ROWS);
    this.o.tbody.replaceChildren(...shown.map((d) => {
      const at = Date.parse(d.last_seen || '') || d.seenAt || 0;
      const age = at ? now - at : NaN;
      return el('tr', { dataset: age > STALE_MS ? { driver: d.id, stale: 'true' } : { driver: d.id } },
        el('td', { text: d.id }),
        el('td', { text: (d.status || '?').replace('_', ' ') }),
        el('td', { class: 'age', text: Number.isFinite(age) ? `${fmtAge(age)} ago` : '—' }));
    }));
    setText(this.o.caption, all.length
      ? `${shown.length} of ${all.length} drivers on the map${q ? ` matching “${q}”` : ''}${rows.length > MAX_ROWS ? ` (first ${MAX_ROWS})` : ''}`
      : 'No drivers on the map.');
  }
}
