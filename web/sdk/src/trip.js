// watchTrip: a trip's events over Server-Sent Events, JSON long-polling
// or ETag polling, with one behaviour on all three: events in order, each
// durable event once (by ID), trip.location latest-wins (by its seq),
// resume after any disconnect from the last durable ID (Last-Event-ID /
// after=), and an explicit "reset" (a fresh snapshot) when the server
// can't prove continuity.
//
// transport "auto" (the default) starts on SSE and steps down when SSE
// can't work here: the server has no SSE (404/405/406/501), or a proxy
// buffers the stream (no byte within firstByteMs while a plain GET of the
// trip answers), or the stream keeps breaking while plain GETs work. It
// steps down from long-poll to ETag polling when long requests fail while
// short ones work. From a lower transport it tries SSE again after
// probeMs (doubling up to maxProbeMs), so it is back on push as soon as
// the path allows it.
import { Emitter } from './emitter.js';
import { HextrackError, AuthError, TripGoneError, isRejected, isMissing, isAbort, abortError } from './errors.js';
import { request, sleep, backoff, linked } from './http.js';
import { openStream } from './sse.js';
import { TokenSource } from './token.js';

export const TRANSPORTS = ['auto', 'sse', 'longpoll', 'poll'];
const LADDER = ['sse', 'longpoll', 'poll'];

// Frames of the SSE stream the watcher handles itself.
const CONTROL = new Set(['reconnect', 'shutdown', 'token_expired', 'error']);

// compareIds orders stream IDs "<ms>-<seq>"; malformed IDs sort first.
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
  if (body.error && body.error.details && body.error.details.trip) return body.error.details;
  if (body.data && body.data.trip) return body.data;
  return null;
}

export function label(t) {
  return { auto: 'automatic', sse: 'Server-Sent Events', longpoll: 'long-poll', poll: 'ETag polling' }[t] || t;
}

// Switch aborts a transport's loop to run another one.
class Switch extends Error {
  constructor(to, why) {
    super(why);
    this.name = 'Switch';
    this.to = to;
  }
}

export class TripWatch extends Emitter {
  constructor(tripId, opts = {}) {
    super();
    if (!tripId) throw new TypeError('watchTrip needs a trip id');
    this.tripId = tripId;
    this.o = {
      baseURL: opts.baseURL || '',
      fetch: opts.fetch,
      firstByteMs: opts.firstByteMs || 5000,
      idleMs: opts.idleMs || 45000,
      pollMs: opts.pollMs || 2000,
      waitS: opts.waitS || 25,
      probeMs: opts.probeMs || 15000,
      maxProbeMs: opts.maxProbeMs || 120000,
      backoffMs: opts.backoffMs || 500,
      maxBackoffMs: opts.maxBackoffMs || 5000,
    };
    this.auth = opts.auth || new TokenSource(opts);
    this.mode = TRANSPORTS.includes(opts.transport) ? opts.transport : 'auto';
    this.current = this.mode === 'auto' ? 'sse' : this.mode;
    this.lastId = opts.lastEventId || '';
    this.locSeq = -1;
    this.attempt = 0;
    this.probes = 0;
    this.resumes = 0;
    this.etag = '';
    this.pollMs = this.o.pollMs;
    this.closed = true;
    this.cur = '';
  }

  get path() {
    return `/v1/trips/${encodeURIComponent(this.tripId)}`;
  }

  // transport is the transport in use now (sse, longpoll or poll).
  get transport() {
    return this.current;
  }

  get lastEventId() {
    return this.lastId;
  }

  start() {
    if (this.ended || !this.closed) return this;
    this.closed = false;
    this.ctl = new AbortController();
    this.loop().catch((e) => {
      if (!this.closed && !isAbort(e)) this.fail(e instanceof HextrackError ? e : new HextrackError(0, 'internal', String(e && e.message)));
    });
    return this;
  }

  // close stops the watcher for good (also before it started); a last
  // "closed" status, then nothing.
  close() {
    this.ended = true;
    if (this.closed) return;
    this.closed = true;
    if (this.ctl) this.ctl.abort();
    this.status('closed', 'stopped');
  }

  // setTransport picks a transport ("auto" or a fixed one) and reconnects
  // on it, resuming from the last event.
  setTransport(t) {
    if (!TRANSPORTS.includes(t)) throw new TypeError(`unknown transport ${t}`);
    this.mode = t;
    this.probes = 0;
    this.switchTo(t === 'auto' ? 'sse' : t, `transport set to ${label(t)}`);
  }

  switchTo(to, why) {
    this.current = to;
    if (this.runCtl) this.runCtl.abort(new Switch(to, why));
  }

  status(state, detail = '', extra = {}) {
    this.cur = state;
    this.emit('status', { state, transport: this.current, mode: this.mode, detail, ...extra });
  }

  fail(err) {
    this.closed = true;
    if (this.ctl) this.ctl.abort();
    this.status(err instanceof AuthError ? 'signed-out' : 'error', err.message, { error: err });
    this.emit('error', err);
  }

  async loop() {
    this.status('connecting', `${label(this.current)}…`);
    while (!this.closed) {
      const [rc, detach] = linked(this.ctl.signal);
      this.runCtl = rc;
      try {
        if (this.current === 'sse') await this.runSSE(rc.signal);
        else if (this.current === 'longpoll') await this.runLongPoll(rc.signal);
        else await this.runPoll(rc.signal);
      } catch (e) {
        if (this.closed) return;
        if (e instanceof AuthError || e instanceof TripGoneError) {
          this.fail(e);
          return;
        }
        if (!isAbort(e) && !(rc.signal.reason instanceof Switch)) throw e;
        // A switch: run the loop again on this.current.
        this.status('reconnecting', `switching to ${label(this.current)}`, { attempt: this.attempt });
      } finally {
        detach();
      }
    }
  }

  // deliver applies one envelope: durable events at most once and in
  // order, locations latest-wins by their own seq, snapshots and resets
  // move the cursor. It returns true for a durable event delivered.
  deliver(env, replayed = false) {
    if (!env || typeof env !== 'object' || !env.type) return false;
    if (env.type === 'reset' || env.type === 'snapshot') {
      const snap = snapshotOf(env.data) || snapshotOf(env);
      if (!snap) return false;
      if (snap.feed_position) this.lastId = snap.feed_position;
      else if (env.id) this.lastId = env.id;
      if (snap.location && Number.isFinite(Number(snap.location.seq))) this.locSeq = Math.max(this.locSeq, Number(snap.location.seq));
      this.publish({ ...env, id: env.id || snap.feed_position || '', data: snap }, false);
      return false;
    }
    if (env.type === 'trip.location') {
      const seq = env.data && Number(env.data.seq);
      if (Number.isFinite(seq)) {
        if (seq <= this.locSeq) return false;
        this.locSeq = seq;
      }
      this.publish(env, false);
      return false;
    }
    if (env.id) {
      if (this.lastId && compareIds(env.id, this.lastId) <= 0) return false;
      this.lastId = env.id;
    }
    this.publish(env, replayed);
    return !!env.id;
  }

  publish(env, replayed) {
    const meta = { replayed, transport: this.current };
    this.emit('event', env, meta);
    this.emit(env.type, env, meta);
  }

  async snapshot(signal, why) {
    const snap = await this.call(this.path, { signal });
    this.deliver({ type: why, id: snap.feed_position || '', ts: new Date().toISOString(), data: snap });
    return snap;
  }

  // call is request with the watcher's token: a 401 refreshes the token
  // (TokenSource) and tries once more.
  async call(path, opts = {}) {
    for (let i = 0; ; i++) {
      const token = await this.auth.get();
      try {
        const r = await request(path, { ...opts, token, baseURL: this.o.baseURL, fetch: this.o.fetch });
        this.auth.ok();
        return r;
      } catch (e) {
        if (!isRejected(e) || i > 0) throw e;
        await this.auth.rejected(e, token);
      }
    }
  }

  // retryWait handles a failed attempt: a rejected token is refreshed
  // (at once), anything else waits a capped, jittered backoff.
  async retryWait(err, signal, token) {
    if (err instanceof AuthError) throw err;
    if (isRejected(err)) {
      await this.auth.rejected(err, token);
      this.status('reconnecting', 'token rejected by the server; reconnecting with a fresh one', { attempt: this.attempt });
      return;
    }
    const ms = backoff(this.attempt++, this.o.backoffMs, this.o.maxBackoffMs);
    const why = err.status ? `HTTP ${err.status}${err.code ? ` ${err.code}` : ''}` : err.message || 'server unreachable';
    this.status('reconnecting', `${why}; attempt ${this.attempt}, retrying in ${(ms / 1000).toFixed(1)} s`, { attempt: this.attempt, retryInMs: ms, error: err });
    await sleep(ms, signal);
  }

  resumed(missed, reset) {
    this.resumes++;
    if (reset) this.status('reset', 'continuity could not be proven: state reloaded from a fresh snapshot', { resumes: this.resumes });
    else this.status('resumed', `${missed} missed event${missed === 1 ? '' : 's'} replayed`, { missed, resumes: this.resumes });
  }

  // plainGetWorks tells a broken stream path (a proxy) from a server
  // that is down: a short GET of the trip.
  async plainGetWorks(signal) {
    try {
      await this.call(this.path, { signal });
      return true;
    } catch (e) {
      if (isAbort(e) || e instanceof AuthError) throw e;
      return false;
    }
  }

  // gone404 tells a trip the server does not know from a server without the
  // route: after a 404, a plain GET of the trip answering 404 too is the
  // trip gone (a TripGoneError to stop on), else null.
  async gone404(err, signal) {
    if (!(err instanceof HextrackError) || err.status !== 404) return null;
    try {
      await this.call(this.path, { signal });
      return null;
    } catch (e) {
      if (isAbort(e) || e instanceof AuthError) throw e;
      return e instanceof HextrackError && e.status === 404 ? new TripGoneError(e) : null;
    }
  }

  // stepDown leaves a transport that can't work on this path (auto mode).
  stepDown(from, why) {
    const to = LADDER[LADDER.indexOf(from) + 1];
    if (this.mode !== 'auto' || !to) return false;
    this.probeAt = Date.now() + Math.min(this.o.maxProbeMs, this.o.probeMs * 2 ** this.probes++);
    this.status('reconnecting', `${why}; falling back to ${label(to)}`, { attempt: this.attempt, fallback: to });
    this.current = to;
    return true;
  }

  // probeDue: on a lower transport in auto mode, time to try SSE again.
  probeDue() {
    return this.mode === 'auto' && this.current !== 'sse' && this.probeAt && Date.now() >= this.probeAt;
  }

  // --- SSE -------------------------------------------------------------
  async runSSE(signal) {
    let suspect = 0;
    while (!this.closed) {
      const reconnect = this.hadConnection;
      const [conn, detach] = linked(signal);
      let opened = 0;
      let replayed = 0;
      let sawReset = false;
      let settleTimer;
      let control = '';
      let controlData = null;
      const settle = () => {
        if (reconnect) this.resumed(replayed, sawReset);
        else this.status('live', 'Server-Sent Events');
      };
      const headers = this.lastId ? { 'Last-Event-ID': this.lastId } : {};
      let token;
      try {
        token = await this.auth.get();
        await openStream(`${this.path}/events`, {
          baseURL: this.o.baseURL,
          fetch: this.o.fetch,
          token,
          headers,
          signal: conn.signal,
          idleMs: this.o.idleMs,
          // Telling a buffering proxy apart matters only when there is
          // somewhere to fall back to; a fixed SSE just waits (idleMs).
          firstByteMs: this.mode === 'auto' ? this.o.firstByteMs : undefined,
          onOpen: () => {
            opened = Date.now();
            this.auth.ok();
          },
          onData: () => {
            if (settleTimer) return;
            this.attempt = 0;
            suspect = 0;
            this.probes = 0;
            this.hadConnection = true;
            // Missed events come first; give them a moment before
            // reporting how many there were.
            settleTimer = setTimeout(settle, 500);
          },
          onFrame: (f) => {
            let env;
            try { env = JSON.parse(f.data); } catch { return; }
            if (!env || typeof env !== 'object') return;
            if (!env.type) env.type = f.event;
            if (!env.id && f.id && env.type !== 'trip.location') env.id = f.id;
            if (CONTROL.has(env.type)) {
              // The node drains, the token expired or access ended:
              // reconnect (with a fresh token when needed) and resume.
              control = env.type;
              controlData = env.data;
              conn.abort();
              return;
            }
            if (env.type === 'reset') sawReset = true;
            const ts = Date.parse(env.ts || '');
            const old = reconnect && Number.isFinite(ts) && ts < opened - 50;
            if (this.deliver(env, old) && old) replayed++;
          },
        });
        control = control || 'ended';
      } catch (e) {
        clearTimeout(settleTimer);
        if (this.closed || signal.aborted) throw isAbort(e) ? e : abortError();
        if (!control) {
          const gone = await this.gone404(e, signal);
          if (gone) throw gone;
          if (e instanceof HextrackError && (isMissing(e) || e.status === 406 || e.code === 'not_event_stream')) {
            if (this.stepDown('sse', `this server offers no event stream (${e.status || e.code})`)) return;
          } else if (e instanceof HextrackError && e.status === 0 && this.mode === 'auto') {
            // Buffered by a proxy, or broken again and again, while a
            // plain GET works: this path can't carry a stream.
            const buffered = e.code === 'buffered';
            if ((buffered || ++suspect >= 3) && await this.plainGetWorks(signal)) {
              if (this.stepDown('sse', buffered ? 'the event stream is held back (a buffering proxy?)' : 'the event stream keeps breaking')) return;
            }
          }
          await this.retryWait(e, signal, token);
          continue;
        }
      } finally {
        detach();
      }
      clearTimeout(settleTimer);
      if (control === 'error' || control === 'token_expired') {
        // access_revoked / token_expired: this token no longer opens the
        // trip; a fresh one from the provider, or stop.
        const code = (controlData && controlData.code) || control;
        await this.retryWait(new HextrackError(401, code, (controlData && controlData.message) || code), signal, token);
        continue;
      }
      const ms = 100 + Math.random() * 900;
      this.status('reconnecting', 'the server asked to reconnect', { attempt: this.attempt, retryInMs: ms });
      await sleep(ms, signal);
    }
  }

  // --- long-poll -------------------------------------------------------
  async runLongPoll(signal) {
    await this.initialCursor(signal);
    let broken = false;
    let suspect = 0;
    while (!this.closed) {
      if (this.probeDue()) {
        this.current = 'sse';
        return;
      }
      try {
        // The first request of a session catches up without waiting, so
        // "live" (or "resumed") is said at once, not after a quiet wait.
        const settled = !broken && ['live', 'resumed', 'reset'].includes(this.cur);
        const q = new URLSearchParams({ after: this.lastId, wait: settled ? String(this.o.waitS) : '0', limit: '200' });
        const r = await this.call(`${this.path}/events?${q}`, { signal });
        let n = 0;
        for (const env of r.events || []) if (this.deliver(env, broken)) n++;
        if (r.next) this.lastId = r.next;
        if (r.location) this.deliver({ type: 'trip.location', ts: r.location.ts, data: { trip_id: this.tripId, ...r.location } });
        if (broken) this.resumed(n, false);
        else if (!['live', 'resumed', 'reset'].includes(this.cur)) this.status('live', 'long-poll');
        broken = false;
        // Only a long request that went through clears the suspicion
        // (the catch-up requests don't wait).
        if (settled) suspect = 0;
        this.attempt = 0;
      } catch (e) {
        if (isAbort(e) || e instanceof AuthError) throw e;
        if (e instanceof HextrackError && e.status === 410) {
          await this.gone(e, signal);
          broken = false;
          continue;
        }
        const gone = await this.gone404(e, signal);
        if (gone) throw gone;
        broken = true;
        // Long requests cut (a proxy's timeout) while short ones work.
        if (this.mode === 'auto' && (e.status === 0 || e.status >= 502) && ++suspect >= 2 && await this.plainGetWorks(signal)) {
          if (this.stepDown('longpoll', 'long requests are cut on the way')) return;
        }
        await this.retryWait(e, signal);
      }
    }
  }

  async gone(e, signal) {
    const snap = snapshotOf(e.body);
    if (snap) this.deliver({ type: 'reset', id: snap.feed_position || '', ts: new Date().toISOString(), data: snap });
    else await this.snapshot(signal, 'reset');
    this.resumed(0, true);
  }

  async initialCursor(signal) {
    for (;;) {
      try {
        if (!this.lastId) await this.snapshot(signal, 'snapshot');
        return;
      } catch (e) {
        if (isAbort(e) || e instanceof AuthError) throw e;
        const gone = await this.gone404(e, signal);
        if (gone) throw gone;
        await this.retryWait(e, signal);
      }
    }
  }

  // --- ETag polling ----------------------------------------------------
  // Each round: the snapshot with If-None-Match (a 304 costs nothing; a
  // 200 brings the latest location and ETA, and X-Poll-Interval sets the
  // pace), then the durable events after the cursor without waiting.
  async runPoll(signal) {
    await this.initialCursor(signal);
    let broken = false;
    while (!this.closed) {
      if (this.probeDue()) {
        this.current = 'sse';
        return;
      }
      try {
        const headers = this.etag ? { 'If-None-Match': this.etag } : {};
        const res = await this.call(this.path, { headers, raw: true, signal });
        const hint = Number(res.headers.get('X-Poll-Interval'));
        if (hint > 0) this.pollMs = Math.min(30000, Math.max(500, hint * 1000));
        let snap = null;
        if (res.status !== 304) {
          this.etag = res.headers.get('ETag') || '';
          snap = await res.json();
        }
        const q = new URLSearchParams({ after: this.lastId, wait: '0', limit: '200' });
        const r = await this.call(`${this.path}/events?${q}`, { signal });
        let n = 0;
        for (const env of r.events || []) if (this.deliver(env, broken)) n++;
        if (r.next) this.lastId = r.next;
        if (snap && snap.location) this.deliver({ type: 'trip.location', ts: snap.location.ts, data: { trip_id: this.tripId, ...snap.location } });
        if (broken) this.resumed(n, false);
        else if (this.cur !== 'live' && this.cur !== 'resumed' && this.cur !== 'reset') this.status('live', `ETag polling every ${(this.pollMs / 1000).toFixed(1)} s`);
        broken = false;
        this.attempt = 0;
        await sleep(this.pollMs, signal);
      } catch (e) {
        if (isAbort(e) || e instanceof AuthError) throw e;
        if (e instanceof HextrackError && e.status === 410) {
          await this.gone(e, signal);
          continue;
        }
        const gone = await this.gone404(e, signal);
        if (gone) throw gone;
        broken = true;
        await this.retryWait(e, signal);
      }
    }
  }
}

// watchTrip starts watching trip tripId and returns the watcher. opts:
// {token | tokenProvider, baseURL, transport ("auto"), lastEventId,
// firstByteMs, idleMs, pollMs, waitS, probeMs, maxProbeMs, backoffMs,
// maxBackoffMs, fetch}. Listen with on('event'), on('status'),
// on('error'), or on('<event type>').
export function watchTrip(tripId, opts = {}) {
  const w = new TripWatch(tripId, opts);
  // Listeners are added right after the call: start on the next tick.
  queueMicrotask(() => w.start());
  return w;
}
