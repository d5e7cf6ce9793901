// Trip feed client over three transports — SSE, long-poll, poll — with
// one behaviour: events in order, each durable event once (by ID), resume
// after any disconnect from the last durable ID, and an explicit "reset"
// (fresh snapshot) when the server can't prove continuity.
//
// Connection states reported through onState({state, detail, missed}):
//   connecting → live; on failure reconnecting (attempt n, retry in ms);
//   after a reconnect "resumed" with how many missed events were replayed,
//   or "reset" when the server answered with a snapshot instead;
//   "signed-out" when the server rejected the token (401) and onRejected
//   found no fresh one: the feed stops instead of retrying forever.
import { request, ApiError, backoff, sleep, isRejected } from './api.js';
import { openStream } from './stream.js';

export const TRANSPORTS = ['sse', 'longpoll', 'poll'];

// Control frames of the SSE stream, handled by the feed itself; every
// other frame, whatever its type, goes to onEvent (one path for all
// transports: see stream.js).
const CONTROL = new Set(['reconnect', 'shutdown', 'token_expired', 'error']);

// compareIds orders stream IDs "ms-seq"; malformed IDs sort first.
export function compareIds(a, b) {
  const pa = parseId(a);
  const pb = parseId(b);
  if (pa[0] !== pb[0]) return pa[0] < pb[0] ? -1 : 1;
  if (pa[1] !== pb[1]) return pa[1] < pb[1] ? -1 : 1;
  return 0;
}

function parseId(id) {
  const m = /^(\d+)-(\d+)$/.exec(id || '');
  return m ? [BigInt(m[1]), BigInt(m[2])] : [-1n, -1n];
}

function snapshotOf(body) {
  if (!body) return null;
  if (body.trip) return body;
  if (body.snapshot) return body.snapshot;
  if (body.error && body.error.details && body.error.details.snapshot) return body.error.details.snapshot;
  if (body.data && body.data.trip) return body.data;
  return null;
}

export class TripFeed {
  // opts: {tripId, getToken: () => token, transport, lastId,
  //        onEvent(env, {replayed}), onSnapshot(snap, why), onState(s),
  //        onRejected: async () => fresh token or null, pollMs}
  constructor(opts) {
    this.o = opts;
    this.transport = opts.transport || 'sse';
    this.lastId = opts.lastId || '';
    this.locSeq = -1;
    this.attempt = 0;
    this.resumes = 0;
    this.stopped = true;
    this.etag = '';
    this.pollMs = opts.pollMs || 2000;
  }

  start() {
    this.stop();
    this.stopped = false;
    this.ctl = new AbortController();
    this.state('connecting', `${label(this.transport)}…`);
    const run = { sse: () => this.runSSE(), longpoll: () => this.runLongPoll(), poll: () => this.runPoll() }[this.transport];
    run().catch((e) => {
      if (!this.stopped && e.name !== 'AbortError') this.state('error', String(e.message || e));
    });
  }

  stop() {
    this.stopped = true;
    if (this.ctl) this.ctl.abort();
    clearTimeout(this.timer);
  }

  setTransport(t) {
    this.transport = t;
    if (!this.stopped) this.start();
  }

  state(state, detail = '', extra = {}) {
    this.cur = state;
    if (this.o.onState) this.o.onState({ state, detail, transport: this.transport, ...extra });
  }

  // deliver applies one envelope: durable events at most once and in
  // order, locations latest-wins by their own sequence.
  deliver(env, replayed = false) {
    if (!env || !env.type) return false;
    if (env.type === 'reset' || env.type === 'snapshot') {
      const snap = snapshotOf(env.data) || snapshotOf(env);
      if (snap) this.applySnapshot(snap, env.type);
      if (env.id) this.lastId = env.id;
      return false;
    }
    if (env.type === 'trip.location') {
      const seq = env.data && Number(env.data.seq ?? env.data.position_seq ?? env.data.pos_seq);
      if (Number.isFinite(seq)) {
        if (seq <= this.locSeq) return false;
        this.locSeq = seq;
      }
      this.o.onEvent(env, { replayed: false });
      return false;
    }
    if (env.id) {
      if (this.lastId && compareIds(env.id, this.lastId) <= 0) return false;
      this.lastId = env.id;
    }
    this.o.onEvent(env, { replayed });
    return !!env.id;
  }

  applySnapshot(snap, why) {
    if (snap.feed_position) this.lastId = snap.feed_position;
    if (snap.location && Number.isFinite(Number(snap.location.seq))) this.locSeq = Math.max(this.locSeq, Number(snap.location.seq) - 1);
    this.o.onSnapshot(snap, why);
  }

  async fetchSnapshot(why) {
    const snap = await request(`/v1/trips/${encodeURIComponent(this.o.tripId)}`, { token: this.o.getToken(), signal: this.ctl.signal });
    this.applySnapshot(snap, why);
    return snap;
  }

  async retryWait(err) {
    if (isRejected(err)) {
      await this.reauth();
      return;
    }
    const ms = backoff(this.attempt++);
    const why = err instanceof ApiError && err.status ? `HTTP ${err.status}` : 'server unreachable';
    this.state('reconnecting', `${why}; attempt ${this.attempt}, retrying in ${(ms / 1000).toFixed(1)} s`, { attempt: this.attempt });
    await sleep(ms, this.ctl.signal);
  }

  // reauth handles a token the server rejected: a fresh one from
  // onRejected (a new dev token), tried at once; none (or rejected three
  // times running) stops the feed in state "signed-out".
  async reauth() {
    this.rejects = (this.rejects || 0) + 1;
    const tok = this.rejects <= 3 && this.o.onRejected ? await this.o.onRejected() : null;
    if (this.stopped) throw new DOMException('aborted', 'AbortError');
    if (tok) {
      this.state('reconnecting', 'sign-in token rejected by the server; reconnecting with a fresh one', { attempt: this.attempt });
      await sleep(this.rejects > 1 ? backoff(this.rejects) : 0, this.ctl.signal);
      return;
    }
    this.state('signed-out', 'the server rejected the sign-in token: sign in again');
    this.stop();
    throw new DOMException('aborted', 'AbortError');
  }

  // resumed reports the outcome of a reconnect.
  resumed(missed, reset) {
    if (reset) {
      this.resumes++;
      this.state('reset', 'continuity could not be proven: state reloaded from a fresh snapshot');
    } else {
      this.resumes++;
      this.state('resumed', `${missed} missed event${missed === 1 ? '' : 's'} replayed`, { missed });
    }
  }

  // --- SSE -------------------------------------------------------------
  async runSSE() {
    while (!this.stopped) {
      const reconnect = this.hadConnection;
      const q = new URLSearchParams();
      if (this.lastId) q.set('lastEventId', this.lastId);
      const conn = new AbortController();
      const abort = () => conn.abort();
      this.ctl.signal.addEventListener('abort', abort, { once: true });
      let opened = 0;
      let replayed = 0;
      let sawReset = false;
      let settleTimer;
      let control = '';
      const settle = () => {
        if (reconnect) this.resumed(replayed, sawReset);
        else this.state('live', 'connected');
      };
      try {
        await openStream(`/v1/trips/${encodeURIComponent(this.o.tripId)}/events?${q}`, {
          token: this.o.getToken(),
          signal: conn.signal,
          onOpen: () => {
            opened = Date.now();
            this.attempt = 0;
            this.rejects = 0;
            this.hadConnection = true;
            // Missed events arrive first; give them a moment before reporting.
            settleTimer = setTimeout(settle, 600);
          },
          onFrame: (f) => {
            let env;
            try { env = JSON.parse(f.data); } catch { return; }
            if (!env || typeof env !== 'object') return;
            if (!env.type) env.type = f.event;
            if (!env.id && f.id && env.type !== 'trip.location') env.id = f.id;
            if (CONTROL.has(env.type)) {
              // The node is draining, the token expired or access ended:
              // reconnect now (resuming by ID), with a fresh token if needed.
              control = env.type;
              conn.abort();
              return;
            }
            if (env.type === 'reset') sawReset = true;
            const ts = Date.parse(env.ts || '');
            const old = reconnect && Number.isFinite(ts) && opened && ts < opened - 50;
            if (this.deliver(env, old) && old) replayed++;
          },
        });
        control = control || 'ended';
      } catch (e) {
        if (this.stopped) return;
        if (!control) {
          clearTimeout(settleTimer);
          await this.retryWait(e);
          continue;
        }
      } finally {
        this.ctl.signal.removeEventListener('abort', abort);
      }
      clearTimeout(settleTimer);
      if (control === 'error') {
        // access_revoked: this token no longer opens the trip.
        await this.reauth();
        continue;
      }
      const ms = 100 + Math.random() * 900;
      this.state('reconnecting', control === 'token_expired' ? 'token expired; reconnecting' : 'server asked to reconnect', { attempt: this.attempt });
      await sleep(ms, this.ctl.signal);
    }
  }

  // --- long-poll -------------------------------------------------------
  async runLongPoll() {
    await this.initialCursor();
    let broken = false;
    while (!this.stopped) {
      try {
        const q = new URLSearchParams({ after: this.lastId, wait: '25', limit: '200' });
        const r = await request(`/v1/trips/${encodeURIComponent(this.o.tripId)}/events?${q}`, { token: this.o.getToken(), signal: this.ctl.signal });
        let n = 0;
        for (const env of r.events || []) if (this.deliver(env, broken)) n++;
        if (r.next) this.lastId = r.next;
        if (broken) this.resumed(n, false);
        else if (this.cur !== 'live' && this.cur !== 'resumed' && this.cur !== 'reset') this.state('live', 'long-poll open');
        broken = false;
        this.attempt = 0;
        this.rejects = 0;
        this.maybeRefreshLocation();
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (e instanceof ApiError && e.status === 410) {
          const snap = snapshotOf(e.body);
          if (snap) this.applySnapshot(snap, 'reset'); else await this.fetchSnapshot('reset');
          this.resumed(0, true);
          broken = false;
          continue;
        }
        broken = true;
        await this.retryWait(e);
      }
    }
  }

  async initialCursor() {
    for (;;) {
      try {
        if (!this.lastId) await this.fetchSnapshot('snapshot');
        return;
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        await this.retryWait(e);
      }
    }
  }

  // Locations are live-only and not in the stream; long-poll and poll
  // clients read the latest one from the snapshot (ETag: cheap when still).
  async maybeRefreshLocation() {
    const now = Date.now();
    if (this.locBusy || now - (this.locAt || 0) < 1000) return;
    this.locBusy = true;
    this.locAt = now;
    try {
      const headers = this.etag ? { 'If-None-Match': this.etag } : {};
      const res = await request(`/v1/trips/${encodeURIComponent(this.o.tripId)}`, { token: this.o.getToken(), headers, raw: true, signal: this.ctl.signal });
      const hint = Number(res.headers.get('X-Poll-Interval') || res.headers.get('Retry-After'));
      if (hint > 0) this.pollMs = Math.min(30000, Math.max(500, hint < 100 ? hint * 1000 : hint));
      if (res.status !== 304) {
        this.etag = res.headers.get('ETag') || '';
        const snap = await res.json();
        if (snap.location) this.deliver({ type: 'trip.location', data: snap.location, ts: snap.location.ts });
        if (this.o.onSnapshotPeek) this.o.onSnapshotPeek(snap);
      }
    } catch (e) {
      if (e.name === 'AbortError') throw e;
    } finally {
      this.locBusy = false;
    }
  }

  // --- poll --------------------------------------------------------------
  async runPoll() {
    await this.initialCursor();
    let broken = false;
    while (!this.stopped) {
      try {
        const q = new URLSearchParams({ after: this.lastId, wait: '0', limit: '200' });
        const r = await request(`/v1/trips/${encodeURIComponent(this.o.tripId)}/events?${q}`, { token: this.o.getToken(), signal: this.ctl.signal });
        let n = 0;
        for (const env of r.events || []) if (this.deliver(env, broken)) n++;
        if (r.next) this.lastId = r.next;
        this.locAt = 0;
        await this.maybeRefreshLocation();
        if (broken) this.resumed(n, false);
        else if (this.cur === 'connecting' || this.cur === 'reconnecting') this.state('live', `polling every ${(this.pollMs / 1000).toFixed(1)} s`);
        broken = false;
        this.attempt = 0;
        this.rejects = 0;
        await sleep(this.pollMs, this.ctl.signal);
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (e instanceof ApiError && e.status === 410) {
          const snap = snapshotOf(e.body);
          if (snap) this.applySnapshot(snap, 'reset'); else await this.fetchSnapshot('reset');
          this.resumed(0, true);
          continue;
        }
        broken = true;
        await this.retryWait(e);
      }
    }
  }
}

export function label(t) {
  return { sse: 'Server-Sent Events', longpoll: 'long-poll', poll: 'polling' }[t] || t;
}
