// The driver's two-way channel: WebSocket when the server offers it, REST
// (POST locations + long-poll GET commands) otherwise — an equal
// alternative, not a degraded one. Pings sit in an outbox until the server
// acknowledges them (WS ack{seq} or the REST reply's last_seq), so a
// dropped connection or a restarted server loses nothing: the backlog is
// uploaded as one batch on reconnect. Commands carry event IDs; the last
// one seen is sent as hello.last_id (WS) or after= (REST) to resume.
import { request, ApiError, backoff, sleep, isMissing } from './api.js';

const MAX_OUTBOX = 5000;
const BATCH = 500;

export class DriverChannel {
  // opts: {driverId, getToken, mode: auto|ws|rest, onCommand(cmd),
  //        onState({state, detail, via}), onAck(seq)}
  constructor(opts) {
    this.o = opts;
    this.mode = opts.mode || 'auto';
    this.outbox = [];
    this.sent = 0;
    this.lastCmd = localStorage.getItem(`hextrack.driver.${opts.driverId}.lastcmd`) || '';
    this.seen = new Set();
    this.stopped = true;
    this.wsFails = 0;
  }

  start() {
    this.stopped = false;
    this.ctl = new AbortController();
    this.attempt = 0;
    if (this.mode === 'rest') this.startRest();
    else this.openWS();
  }

  stop() {
    this.stopped = true;
    if (this.ctl) this.ctl.abort();
    clearTimeout(this.timer);
    clearTimeout(this.probeTimer);
    clearInterval(this.flushTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'bye');
    }
  }

  setMode(m) {
    this.stop();
    this.mode = m;
    this.wsFails = 0;
    this.start();
  }

  state(state, detail, extra = {}) {
    this.cur = state;
    if (this.o.onState) this.o.onState({ state, detail, via: this.via || '', ...extra });
  }

  // send queues one ping and tries to deliver it now.
  send(ping) {
    this.outbox.push(ping);
    if (this.outbox.length > MAX_OUTBOX) this.outbox.splice(0, this.outbox.length - MAX_OUTBOX);
    this.flush();
  }

  acked(seq) {
    if (!Number.isFinite(seq)) return;
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((p) => p.seq > seq);
    this.sent += before - this.outbox.length;
    if (this.o.onAck) this.o.onAck(seq);
  }

  flush() {
    if (this.via === 'ws' && this.ws && this.ws.readyState === WebSocket.OPEN) {
      if (!this.outbox.length) return;
      // Over WS the outbox is resent until acked; send only what is new
      // since the last frame, but everything again after a reconnect.
      const fresh = this.outbox.filter((p) => p.seq > (this.wsSentSeq || 0)).slice(0, BATCH);
      if (!fresh.length) return;
      this.wsSentSeq = fresh[fresh.length - 1].seq;
      this.ws.send(JSON.stringify({ type: 'locations', pings: fresh }));
    } else if (this.via === 'rest') {
      this.flushRest();
    }
  }

  async flushRest() {
    if (this.restBusy || !this.outbox.length || this.stopped) return;
    this.restBusy = true;
    try {
      while (this.outbox.length && !this.stopped) {
        const batch = this.outbox.slice(0, BATCH);
        const body = batch.length === 1 ? batch[0] : { pings: batch };
        try {
          const r = await request(`/v1/drivers/${encodeURIComponent(this.o.driverId)}/locations`, { method: 'POST', token: this.o.getToken(), body });
          this.drop(batch, r);
          this.restRecovered();
          if (this.cur !== 'live' && this.restCommands !== 'polling') this.state('live', 'REST pings');
        } catch (e) {
          if (e instanceof ApiError && e.status === 400 && e.body && e.body.error) {
            // Rejected pings are dropped (they'd be rejected again).
            this.drop(batch, e.body.error.details || {});
            continue;
          }
          if (e instanceof ApiError && e.status === 429) {
            await sleep(1000, this.ctl.signal).catch(() => {});
            break;
          }
          this.restBroken = true;
          this.state('reconnecting', `pings queued (${this.outbox.length}); ${e.message}`);
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
    if (r && Number.isFinite(r.last_seq) && this.o.onAck) this.o.onAck(r.last_seq);
  }

  // --- WebSocket ---------------------------------------------------------
  openWS() {
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = new URLSearchParams({ access_token: this.o.getToken() });
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/v1/drivers/${encodeURIComponent(this.o.driverId)}/ws?${q}`);
    } catch {
      this.wsFailed(false);
      return;
    }
    this.ws = ws;
    this.via = 'ws';
    let opened = false;
    this.state(this.attempt ? 'reconnecting' : 'connecting', 'WebSocket…');
    ws.onopen = () => {
      opened = true;
      this.wsFails = 0;
      this.probes = 0;
      const wasReconnect = this.attempt > 0 || this.hadWS;
      this.attempt = 0;
      this.hadWS = true;
      this.wsSentSeq = 0;
      ws.send(JSON.stringify({ type: 'hello', last_id: this.lastCmd }));
      this.state(wasReconnect ? 'resumed' : 'live', wasReconnect ? `WebSocket resumed after ${this.lastCmd || 'start'}` : 'WebSocket');
      this.flush();
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      this.onWSMessage(m);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (!opened) this.wsFailed(true);
      else {
        const ms = ev.code === 1012 || ev.code === 1001 ? 200 + Math.random() * 1500 : backoff(this.attempt++);
        this.state('reconnecting', `WebSocket closed (${ev.code}); retrying in ${(ms / 1000).toFixed(1)} s`);
        this.timer = setTimeout(() => this.openWS(), ms);
      }
    };
  }

  wsFailed() {
    this.wsFails++;
    // Twice refused before ever opening: this server (or a proxy) doesn't
    // do WebSocket; use REST. In "ws only" mode keep trying.
    if (this.mode === 'auto' && this.wsFails >= 2) {
      this.startRest('WebSocket unavailable');
      return;
    }
    const ms = backoff(this.attempt++);
    this.state('reconnecting', `WebSocket failed; retrying in ${(ms / 1000).toFixed(1)} s`);
    this.timer = setTimeout(() => this.openWS(), ms);
  }

  onWSMessage(m) {
    const type = m.type;
    if (type === 'ack' && m.seq !== undefined) {
      this.acked(Number(m.seq));
      this.flush();
      return;
    }
    if (type === 'error') {
      this.state(this.cur, `server error: ${m.code || ''} ${m.message || ''}`.trim());
      if (this.o.onError) this.o.onError(m);
      return;
    }
    if (type === 'welcome' || type === 'hello' || type === 'pong') return;
    if (type === 'reconnect' || type === 'shutdown') {
      if (this.ws) this.ws.close(1000, 'reconnect');
      return;
    }
    this.command(m);
  }

  // command hands a command to the page once (by event ID) and acks it.
  command(m) {
    const id = m.id || '';
    if (id && this.seen.has(id)) {
      this.ackCommand(id);
      return;
    }
    if (id) {
      this.seen.add(id);
      this.lastCmd = id;
      localStorage.setItem(`hextrack.driver.${this.o.driverId}.lastcmd`, id);
    }
    const cmd = { id, type: m.type, data: m.data || m, ts: m.ts };
    try {
      this.o.onCommand(cmd);
    } finally {
      if (id) this.ackCommand(id);
    }
  }

  ackCommand(id) {
    if (this.via === 'ws' && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'ack', id }));
    } else {
      request(`/v1/drivers/${encodeURIComponent(this.o.driverId)}/commands/${encodeURIComponent(id)}/ack`, { method: 'POST', token: this.o.getToken() }).catch(() => {});
    }
  }

  // sendWS sends a trip action over the socket when it is open.
  sendWS(msg) {
    if (this.via === 'ws' && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  // --- REST ----------------------------------------------------------------
  startRest(why) {
    this.via = 'rest';
    this.restCtl = new AbortController();
    const rc = this.restCtl;
    this.ctl.signal.addEventListener('abort', () => rc.abort(), { once: true });
    this.state('live', why ? `${why}; using REST` : 'REST');
    if (this.mode === 'auto') {
      // REST because WebSocket failed (often only an outage): look again,
      // after 2.5 s, then less often (up to 15 s), and soon after REST
      // calls go through again, so "Auto" goes back to WebSocket.
      this.probeWS(backoff(this.probes = (this.probes || 0) + 1, 2500, 15000));
    }
    clearInterval(this.flushTimer);
    this.flushTimer = setInterval(() => this.flushRest(), 2000);
    this.flushRest();
    this.pollCommands();
  }

  // restRecovered: a REST call went through; after an outage (or a
  // rejected token) "Auto" tries WebSocket again soon.
  restRecovered() {
    if (this.restBroken && this.mode === 'auto' && this.via === 'rest') {
      this.probes = 0;
      this.probeWS(500 + Math.random() * 1000);
    }
    this.restBroken = false;
  }

  probeWS(ms) {
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => this.backToWS(), ms);
  }

  // backToWS leaves REST for another WebSocket attempt (auto mode); two
  // failures bring it back to REST with the next probe further out.
  backToWS() {
    if (this.stopped || this.via !== 'rest' || this.mode !== 'auto') return;
    this.via = '';
    this.restCtl.abort();
    clearInterval(this.flushTimer);
    this.wsFails = 0;
    this.openWS();
  }

  async pollCommands() {
    let missingSince = 0;
    while (!this.stopped && this.via === 'rest') {
      try {
        const q = new URLSearchParams({ after: this.lastCmd, wait: '25' });
        const r = await request(`/v1/drivers/${encodeURIComponent(this.o.driverId)}/commands?${q}`, { token: this.o.getToken(), signal: this.restCtl.signal });
        this.restCommands = 'polling';
        if (this.cur !== 'live') this.state('live', 'REST: pings + long-poll commands');
        this.restRecovered();
        for (const c of r.commands || r.events || []) this.command(c);
        if (r.next) {
          this.lastCmd = r.next;
          localStorage.setItem(`hextrack.driver.${this.o.driverId}.lastcmd`, r.next);
        }
        this.attempt = 0;
        missingSince = 0;
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (isMissing(e)) {
          // The server has no command channel: pings still work; look
          // again now and then (a rolling deploy may add it).
          if (!missingSince) missingSince = Date.now();
          this.restCommands = 'missing';
          this.state('live', 'REST pings; this server offers no command channel (no offers)');
          await sleep(30000, this.restCtl.signal).catch(() => {});
          continue;
        }
        if (e instanceof ApiError && e.status === 401 && this.o.onRejected) {
          this.restBroken = true;
          // A rejected token: a fresh one (dev mode), or stop and say so.
          if (!(await this.o.onRejected())) {
            this.state('signed-out', 'the server rejected the sign-in token: sign in again');
            this.stop();
            return;
          }
          continue;
        }
        this.restBroken = true;
        this.state('reconnecting', `commands: ${e.message}`);
        await sleep(backoff(this.attempt++), this.restCtl.signal).catch(() => {});
      }
    }
  }
}
