// Webhook endpoints on the ops page: every endpoint with its status
// (GET /v1/webhooks/endpoints), paused ones first and counted in the
// card's heading, a Resume button on a paused or disabled one
// (PATCH enabled: true; its queued deliveries go again) and a Log button
// showing its latest deliveries (GET …/{id}/deliveries): attempts, the
// receiver's status code, latency and error. Refreshed every 15 s.
import { $, el, setText } from '../lib/ui.js';

const REFRESH_MS = 15000;
const LOG_ROWS = 10;
// Paused first: they need ops; then failing, disabled, active.
const ORDER = { paused: 0, failing: 1, disabled: 2, active: 3 };

function fmtWhen(ts) {
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export class WebhookList {
  // opts: {api(path) → JSON, send(path, {method, body}) → JSON, notice(msg, kind)}.
  // The markup is the "Webhook endpoints" card of ops.html.
  constructor({ api, send, notice }) {
    this.api = api;
    this.send = send;
    this.notice = notice;
    this.tbody = $('#webhooks');
    this.logBox = $('#wh-log');
    this.logOf = '';
    $('#wh-refresh').addEventListener('click', () => this.load());
    setInterval(() => this.load(), REFRESH_MS);
  }

  async load() {
    let eps;
    try {
      const r = await this.api('/v1/webhooks/endpoints');
      eps = (r && r.endpoints) || [];
    } catch (e) {
      setText('#webhooks-caption', `Webhook endpoints unavailable: ${e.message}`);
      setText('#webhooks-count', '');
      return;
    }
    eps.sort((a, b) => (ORDER[a.status] ?? 9) - (ORDER[b.status] ?? 9) || (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
    this.tbody.replaceChildren(...eps.map((ep) => this.row(ep)));
    const paused = eps.filter((ep) => ep.status === 'paused').length;
    const section = $('#webhooks-card');
    section.dataset.paused = String(paused);
    setText('#webhooks-count', paused ? `${paused} paused` : '');
    setText('#webhooks-caption', eps.length
      ? `${eps.length} endpoint${eps.length === 1 ? '' : 's'}${paused ? `; ${paused} paused after failing for too long: deliveries wait until resumed` : ''}`
      : 'No webhook endpoints.');
    if (this.logOf && eps.some((ep) => ep.id === this.logOf)) this.showLog(this.logOf);
  }

  row(ep) {
    const actions = [];
    if (ep.status === 'paused' || ep.status === 'disabled') {
      actions.push(el('button', { type: 'button', text: 'Resume', 'aria-label': `Resume webhook endpoint ${ep.url}`, onclick: () => this.resume(ep) }));
    }
    actions.push(el('button', { type: 'button', text: 'Log', 'aria-label': `Delivery log of ${ep.url}`, onclick: () => this.showLog(ep.id) }));
    return el('tr', { dataset: { endpoint: ep.id, status: ep.status } },
      el('td', { class: 'url', title: ep.url, text: ep.url }),
      el('td', { text: (ep.filter || []).join(', ') || 'all' }),
      el('td', {}, el('span', { class: 'badge', dataset: { status: ep.status }, text: ep.status })),
      el('td', { text: ep.failing_since ? fmtWhen(ep.failing_since) : '—' }),
      el('td', { class: 'actions' }, ...actions));
  }

  async resume(ep) {
    try {
      await this.send(`/v1/webhooks/endpoints/${encodeURIComponent(ep.id)}`, { method: 'PATCH', body: { enabled: true } });
      this.notice(`Webhook endpoint ${ep.url} resumed: its queued deliveries go again.`);
    } catch (e) {
      this.notice(`Resume failed: ${e.message}`, 'error');
    }
    await this.load();
  }

  async showLog(id) {
    this.logOf = id;
    let page;
    try {
      page = await this.api(`/v1/webhooks/endpoints/${encodeURIComponent(id)}/deliveries?limit=${LOG_ROWS}`);
    } catch (e) {
      this.logBox.hidden = false;
      setText('#wh-log-caption', `Delivery log unavailable: ${e.message}`);
      return;
    }
    const ds = (page && page.deliveries) || [];
    $('#wh-log-rows').replaceChildren(...ds.map((d) => el('tr', { dataset: { state: d.state } },
      el('td', { text: d.last_attempt_at ? fmtWhen(d.last_attempt_at) : '—' }),
      el('td', { text: `${d.type} ${d.event_id}`, title: d.topic }),
      el('td', { text: d.state }),
      el('td', { text: String(d.attempts) }),
      el('td', { text: d.status_code ? String(d.status_code) : '—' }),
      el('td', { class: 'error', title: d.error || '', text: d.error || '' }))));
    this.logBox.hidden = false;
    setText('#wh-log-caption', ds.length
      ? `${ds.length === 1 ? 'Latest delivery' : `Latest ${ds.length} deliveries`} of ${id}${ds.length > 1 ? ', newest first' : ''}`
      : `No deliveries to ${id} yet.`);
  }
}
