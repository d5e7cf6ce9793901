// The driver's two-way channel: a WebSocket when the path allows it, REST
// otherwise (POST locations + long-poll GET commands), an equal
// alternative rather than a degraded one.
//
// Pings wait in an outbox (the offline buffer, up to maxOutbox, oldest
// dropped first) until the server acknowledges them: WS ack{seq}, or the
// REST reply. A dropped connection or a restarted server loses nothing;
// the backlog goes up in batches on reconnect.
//
// Commands (offers, cancellations...) carry feed IDs. The server replays
// every command the driver has not acked; the channel hands each to
// on('command') once (by ID), and acks it only after the listeners ran
// without throwing — a command whose handling failed comes again on the
// next connection. The last handled ID resumes the next connection
// (hello.last_id / after=) and is kept in opts.storage across reloads.
//
// mode "auto" uses WebSocket, falls back to REST after two failed opens,
// and tries WebSocket again after a while (sooner once REST calls go
// through after an outage), so it is back on the socket when it can be.
import { Emitter } from './emitter.js';
import { HextrackError, AuthError, isAbort, isMissing, isRejected } from './errors.js';
import { request, sleep, backoff, join, linked } from './http.js';
import { TokenSource } from './token.js';

const BATCH = 500;
const OPEN = 1;

// memoryStorage is the default storage: kept for the page's lifetime.
function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)) };
}

export class DriverChannel extends Emitter {
  constructor(driverId, opts = {}) {
    super();
    if (!driverId) throw new TypeError('connectDriver needs a driver id');
    this.driverId = driverId;
    this.o = {
      baseURL: opts.baseURL || '',
      fetch: opts.fetch,
      WebSocket: opts.WebSocket || globalThis.WebSocket,
      maxOutbox: opts.maxOutbox || 5000,
      flushMs: opts.flushMs || 2000,
      waitS: opts.waitS || 25,
      probeMs: opts.probeMs || 2500,
      maxProbeMs: opts.maxProbeMs || 15000,
      backoffMs: opts.backoffMs || 500,
      maxBackoffMs: opts.maxBackoffMs || 5000,
      actionTimeoutMs: opts.actionTimeoutMs || 10000,
    };
    this.auth = opts.auth || new TokenSource(opts);
    this.storage = opts.storage || memoryStorage();
    this.mode = opts.mode || 'auto';
    this.outbox = [];
    this.sent = 0;
    this.key = `hextrack.driver.${driverId}.lastcmd`;
    this.lastCmd = this.storage.getItem(this.key) || '';
    this.seen = new Set();
    this.pending = new Map();
    this.refs = 0;
    this.closed = true;
    this.wsFails = 0;
    this.probes = 0;
    this.via = '';
  }

  get queued() {
    return this.outbox.length;
  }

  start() {
    if (this.ended || !this.closed) return this;
    this.closed = false;
    this.ctl = new AbortController();
    this.attempt = 0;
    if (this.mode === 'rest' || !this.o.WebSocket) this.startRest(this.mode === 'rest' ? '' : 'no WebSocket here');
    else this.openWS();
    return this;
  }

  // close stops the channel; pings still queued stay in the outbox (see
  // flush) and go up if the channel is started again.
  close() {
    this.ended = true;
    if (this.closed) return;
    this.closed = true;
    this.ctl.abort();
    clearTimeout(this.timer);
    clearTimeout(this.probeTimer);
    clearInterval(this.flushTimer);
    for (const [, p] of this.pending) p.reject(new HextrackError(0, 'closed', 'the channel was closed'));
    this.pending.clear();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try { ws.close(1000, 'bye'); } catch { /* already closing */ }
    }
    this.via = '';
    this.status('closed', 'stopped');
  }

  setMode(m) {
    this.close();
    this.ended = false;
    this.mode = m;
    this.wsFails = 0;
    this.probes = 0;
    this.start();
  }

  status(state, detail, extra = {}) {
    this.cur = state;
    this.emit('status', { state, detail, via: this.via, mode: this.mode, queued: this.outbox.length, sent: this.sent, ...extra });
  }

  fatal(err) {
    this.status('signed-out', err.message, { error: err });
    this.emit('error', err);
    this.close();
  }

  // send queues one ping {lat, lng, ts, seq, ...} and delivers it now if
  // the channel is up.
  send(ping) {
    this.outbox.push(ping);
    if (this.outbox.length > this.o.maxOutbox) this.outbox.splice(0, this.outbox.length - this.o.maxOutbox);
    this.flush();
  }

  acked(seq) {
    if (!Number.isFinite(seq)) return;
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((p) => p.seq > seq);
    this.sent += before - this.outbox.length;
    this.emit('ack', seq);
  }

  flush() {
    if (this.closed) return;
    if (this.via === 'ws' && this.ws && this.ws.readyState === OPEN) {
      // The outbox is resent until acked: only what is new since the last
      // frame, but all of it again after a reconnect.
      const fresh = this.outbox.filter((p) => p.seq > (this.wsSentSeq || 0)).slice(0, BATCH);
      if (!fresh.length) return;
      this.wsSentSeq = fresh[fresh.length - 1].seq;
      this.ws.send(JSON.stringify({ type: 'locations', pings: fresh }));
    } else if (this.via === 'rest') {
      this.flushRest();
    }
  }

  // call is request with the channel's token; a 401 refreshes it once.
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

  async flushRest() {
    if (this.restBusy || !this.outbox.length || this.closed) return;
    this.restBusy = true;
    try {
      while (this.outbox.length && !this.closed && this.via === 'rest') {
        const batch = this.outbox.slice(0, BATCH);
        const body = batch.length === 1 ? batch[0] : { pings: batch };
        try {
          const r = await this.call(`/v1/drivers/${encodeURIComponent(this.driverId)}/locations`, { method: 'POST', body, signal: this.ctl.signal });
          this.drop(batch, r);
          this.restRecovered();
          if (this.cur !== 'live' && this.restCommands !== 'polling') this.status('live', 'REST pings');
        } catch (e) {
          if (isAbort(e)) return;
          if (e instanceof AuthError) {
            this.fatal(e);
            return;
          }
          if (e.status === 400) {
            // Rejected pings would be rejected again: dropped.
            this.drop(batch, null);
            this.emit('error', e);
            continue;
          }
          if (e.status === 429) {
            await sleep(1000, this.ctl.signal).catch(() => {});
            break;
          }
          this.restBroken = true;
          this.status('reconnecting', `pings queued (${this.outbox.length}); ${e.message}`);
          break;
        }
      }
    } finally {
      this.restBusy = false;
    }
  }

  drop(batch, r) {
    const sent = new Set(batch.map((p) => p.seq));
    this.outbox = this.outbox.filter((p) => !sent.has(p.seq));
    this.sent += batch.length;
    if (r && Number.isFinite(r.last_seq)) this.emit('ack', r.last_seq);
  }

  // act performs a trip action (accept, decline, arrived, pickup,
  // complete, cancel) over the socket when it is open (answered by
  // ok/error with the same ref), over REST otherwise. It resolves to the
  // trip snapshot and rejects with a HextrackError.
  async act(action, tripId, reason) {
    if (this.via === 'ws' && this.ws && this.ws.readyState === OPEN) {
      const ref = `a${++this.refs}`;
      const msg = { type: action, trip: tripId, ref };
      if (reason) msg.reason = reason;
      const p = new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          this.pending.delete(ref);
          reject(new HextrackError(0, 'timeout', `no answer to ${action} over the WebSocket`));
        }, this.o.actionTimeoutMs);
        this.pending.set(ref, {
          resolve: (v) => { clearTimeout(t); resolve(v); },
          reject: (e) => { clearTimeout(t); reject(e); },
        });
      });
      this.ws.send(JSON.stringify(msg));
      return p;
    }
    return this.call(`/v1/trips/${encodeURIComponent(tripId)}/${action}`, { method: 'POST', body: reason ? { reason } : undefined });
  }

  // --- WebSocket ---------------------------------------------------------
  async openWS() {
    if (this.closed) return;
    let token;
    try {
      token = await this.auth.get();
    } catch (e) {
      if (e instanceof AuthError) this.fatal(e);
      else this.wsFailed();
      return;
    }
    if (this.closed) return;
    const base = join(this.o.baseURL, `/v1/drivers/${encodeURIComponent(this.driverId)}/ws`);
    const origin = globalThis.location ? globalThis.location.href : undefined;
    const u = new URL(base, origin);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    // Browsers' WebSocket can't send headers: the token goes in the query.
    u.searchParams.set('access_token', token);
    let ws;
    try {
      ws = new this.o.WebSocket(u.toString());
    } catch {
      this.wsFailed();
      return;
    }
    this.ws = ws;
    this.via = 'ws';
    let opened = false;
    let failed = false;
    // A refused upgrade fires error, then close; some implementations
    // (Node 20's) only error: either one counts, once.
    const failOpen = () => {
      if (opened || failed || ws !== this.ws) return;
      failed = true;
      this.ws = null;
      try { ws.close(); } catch { /* not open */ }
      if (!this.closed) this.wsFailed();
    };
    this.status(this.attempt ? 'reconnecting' : 'connecting', 'WebSocket…');
    ws.onopen = () => {
      opened = true;
      this.auth.ok();
      this.wsFails = 0;
      this.probes = 0;
      const again = this.attempt > 0 || this.hadWS;
      this.attempt = 0;
      this.hadWS = true;
      this.wsSentSeq = 0;
      ws.send(JSON.stringify({ type: 'hello', last_id: this.lastCmd }));
      this.status(again ? 'resumed' : 'live', again ? `WebSocket resumed after ${this.lastCmd || 'start'}` : 'WebSocket');
      this.flush();
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m && typeof m === 'object') this.onWSMessage(m);
    };
    ws.onclose = (ev) => {
      if (!opened) {
        failOpen();
        return;
      }
      if (ws !== this.ws) return;
      this.ws = null;
      for (const [, p] of this.pending) p.reject(new HextrackError(0, 'network', 'the WebSocket closed before the answer'));
      this.pending.clear();
      if (this.closed) return;
      if (ev.code === 4001) {
        // A newer connection of this driver took over: don't fight it.
        this.status('replaced', 'another connection of this driver took over');
        this.emit('error', new HextrackError(0, 'replaced', 'replaced by a newer connection'));
        this.close();
        return;
      }
      if (ev.code === 4403) {
        // Ops suspended this driver: reconnecting is refused until reinstated.
        this.status('suspended', 'this driver is suspended by ops');
        this.emit('error', new HextrackError(403, 'driver_suspended', ev.reason || 'driver suspended by ops'));
        this.close();
        return;
      }
      if (ev.code === 4401) {
        this.auth.rejected(new HextrackError(401, 'token_expired', 'the token expired'), token).then(() => this.openWS(), (e) => this.fatal(e));
        return;
      }
      const ms = ev.code === 1012 || ev.code === 1001 ? 200 + Math.random() * 1500 : backoff(this.attempt++, this.o.backoffMs, this.o.maxBackoffMs);
      this.status('reconnecting', `WebSocket closed (${ev.code}); retrying in ${(ms / 1000).toFixed(1)} s`, { retryInMs: ms });
      this.timer = setTimeout(() => this.openWS(), ms);
    };
    ws.onerror = () => failOpen();
  }

  async wsFailed() {
    this.wsFails++;
    // Twice refused before opening: no WebSocket on this path, or the
    // token is rejected, which a browser's WebSocket can't tell: REST
    // ("auto"), whose 401 refreshes the token. "ws" mode keeps trying,
    // after asking REST about the token, so a rejected one is refreshed
    // (or ends in an AuthError) rather than retried forever.
    if (this.mode === 'auto' && this.wsFails >= 2) {
      this.startRest('WebSocket unavailable');
      return;
    }
    if (this.wsFails >= 2) {
      try {
        await this.call(`/v1/drivers/${encodeURIComponent(this.driverId)}`, { signal: this.ctl.signal });
      } catch (e) {
        if (e instanceof AuthError) {
          this.fatal(e);
          return;
        }
        if (isAbort(e) || this.closed) return;
      }
    }
    const ms = backoff(this.attempt++, this.o.backoffMs, this.o.maxBackoffMs);
    this.status('reconnecting', `WebSocket failed; retrying in ${(ms / 1000).toFixed(1)} s`, { retryInMs: ms });
    this.timer = setTimeout(() => this.openWS(), ms);
  }

  onWSMessage(m) {
    switch (m.type) {
      case 'ack':
        if (m.seq !== undefined) {
          this.acked(Number(m.seq));
          this.flush();
        }
        if (m.rejected && m.rejected.length) this.emit('rejected', m.rejected);
        return;
      case 'ok': {
        const p = m.ref && this.pending.get(m.ref);
        if (p) {
          this.pending.delete(m.ref);
          p.resolve(m.trip);
        }
        return;
      }
      case 'error': {
        const err = new HextrackError(0, m.code, m.message);
        const p = m.ref && this.pending.get(m.ref);
        if (p) {
          this.pending.delete(m.ref);
          p.reject(err);
          return;
        }
        this.emit('error', err);
        return;
      }
      case 'ready':
      case 'acked':
      case 'welcome':
      case 'pong':
        return;
      case 'reset':
        // The server can't replay from our position: it sends the
        // driver's state; commands go on from position.
        if (m.position) this.handled(m.position);
        this.emit('reset', m);
        return;
      case 'reconnect':
      case 'shutdown':
        if (this.ws) this.ws.close(1000, 'reconnect');
        return;
      default:
        this.command(m);
    }
  }

  // command hands a command to the listeners once (by ID), then acks it;
  // false when a listener threw (not acked).
  command(m) {
    const id = m.id || '';
    if (id && this.seen.has(id)) {
      this.ackCommand(id);
      return true;
    }
    const cmd = { id, type: m.type, data: m.data || {}, ts: m.ts, topic: m.topic };
    const set = this.listeners.get('command');
    try {
      for (const fn of set ? [...set] : []) fn(cmd);
    } catch (e) {
      // Not acked: the server offers it again on the next connection.
      this.emit('error', new HextrackError(0, 'command_failed', `command ${id} not handled: ${e && e.message}`, { cause: e }));
      return false;
    }
    if (!id) return true;
    this.seen.add(id);
    this.handled(id);
    this.ackCommand(id);
    return true;
  }

  handled(id) {
    this.lastCmd = id;
    try { this.storage.setItem(this.key, id); } catch { /* storage full */ }
  }

  ackCommand(id) {
    if (this.via === 'ws' && this.ws && this.ws.readyState === OPEN) {
      this.ws.send(JSON.stringify({ type: 'ack', id }));
    } else {
      this.call(`/v1/drivers/${encodeURIComponent(this.driverId)}/commands/${encodeURIComponent(id)}/ack`, { method: 'POST' }).catch(() => {});
    }
  }

  // --- REST ----------------------------------------------------------------
  startRest(why) {
    this.via = 'rest';
    const [rc] = linked(this.ctl.signal);
    this.restCtl = rc;
    this.status('live', why ? `${why}; using REST` : 'REST');
    if (this.mode === 'auto') this.probeWS(backoff(this.probes++, this.o.probeMs, this.o.maxProbeMs));
    clearInterval(this.flushTimer);
    this.flushTimer = setInterval(() => this.flushRest(), this.o.flushMs);
    this.flushRest();
    this.pollCommands(rc.signal);
  }

  // restRecovered: a REST call went through; after an outage "auto" tries
  // the WebSocket again soon.
  restRecovered() {
    if (this.restBroken && this.mode === 'auto' && this.via === 'rest') {
      this.probes = 0;
      this.probeWS(500 + Math.random() * 1000);
    }
    this.restBroken = false;
  }

  probeWS(ms) {
    clearTimeout(this.probeTimer);
    if (!this.o.WebSocket) return;
    this.probeTimer = setTimeout(() => this.backToWS(), ms);
  }

  // backToWS leaves REST for the WebSocket once the server answers a
  // plain GET with the current token (refreshed there on a 401), so a
  // probe neither hits a server that is still down nor offers it a token
  // it would refuse.
  async backToWS() {
    if (this.closed || this.via !== 'rest' || this.mode !== 'auto') return;
    try {
      await this.call(`/v1/drivers/${encodeURIComponent(this.driverId)}`, { signal: this.restCtl.signal });
    } catch (e) {
      if (e instanceof AuthError) {
        this.fatal(e);
        return;
      }
      if (isAbort(e) || this.closed || this.via !== 'rest') return;
      if (e.status === 0 || e.status >= 500) {
        this.probeWS(backoff(this.probes++, this.o.probeMs, this.o.maxProbeMs));
        return;
      }
    }
    if (this.closed || this.via !== 'rest') return;
    this.via = '';
    this.restCtl.abort();
    clearInterval(this.flushTimer);
    this.wsFails = 0;
    this.openWS();
  }

  async pollCommands(signal) {
    while (!this.closed && !signal.aborted) {
      try {
        const q = new URLSearchParams({ wait: String(this.o.waitS) });
        if (this.lastCmd) q.set('after', this.lastCmd);
        const r = await this.call(`/v1/drivers/${encodeURIComponent(this.driverId)}/commands?${q}`, { signal });
        this.restCommands = 'polling';
        if (this.cur !== 'live') this.status('live', 'REST: pings + long-poll commands');
        this.restRecovered();
        // A command not handled stops the batch: the next poll, after
        // the last handled one, brings it again.
        let all = true;
        for (const c of r.commands || []) {
          if (!this.command(c)) {
            all = false;
            break;
          }
        }
        if (all && r.next) this.handled(r.next);
        this.attempt = 0;
      } catch (e) {
        if (isAbort(e) || signal.aborted) return;
        if (e instanceof AuthError) {
          this.fatal(e);
          return;
        }
        if (e.status === 410) {
          const pos = e.details && e.details.position;
          if (pos) this.handled(pos);
          this.emit('reset', { type: 'reset', position: pos });
          continue;
        }
        if (isMissing(e) || e.status === 503) {
          // No command channel on this node: pings still work; look again
          // now and then.
          this.restCommands = 'missing';
          this.status('live', 'REST pings; this server offers no command channel');
          await sleep(30000, signal).catch(() => {});
          continue;
        }
        this.restBroken = true;
        this.status('reconnecting', `commands: ${e.message}`, { error: e });
        await sleep(backoff(this.attempt++, this.o.backoffMs, this.o.maxBackoffMs), signal).catch(() => {});
      }
    }
  }
}

// connectDriver opens driver driverId's channel. opts: {token |
// tokenProvider, baseURL, mode ("auto" | "ws" | "rest"), storage
// (getItem/setItem, e.g. localStorage: keeps the last handled command),
// WebSocket (constructor; default the global one), maxOutbox, flushMs,
// waitS, probeMs, maxProbeMs, backoffMs, maxBackoffMs, fetch}. Listen
// with on('command'), on('status'), on('ack'), on('error'), on('reset').
export function connectDriver(driverId, opts = {}) {
  const ch = new DriverChannel(driverId, opts);
  queueMicrotask(() => ch.start());
  return ch;
}
