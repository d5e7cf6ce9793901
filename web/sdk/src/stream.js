// watchStream: any of the server's latest-wins event streams (the ops
// summary, the ops viewport) kept open: every frame to on('event')
// whatever its name, reconnects with capped, jittered backoff, a rejected
// token refreshed through the token provider (an AuthError when that
// fails), and readyState like EventSource's (0 connecting, 1 open,
// 2 closed) for callers that check it.
import { Emitter } from './emitter.js';
import { HextrackError, AuthError, isAbort, isRejected } from './errors.js';
import { sleep, backoff } from './http.js';
import { openStream } from './sse.js';
import { TokenSource } from './token.js';

export class StreamWatch extends Emitter {
  constructor(path, opts = {}) {
    super();
    this.path = path;
    this.o = {
      baseURL: opts.baseURL || '',
      fetch: opts.fetch,
      idleMs: opts.idleMs || 45000,
      firstByteMs: opts.firstByteMs,
      backoffMs: opts.backoffMs || 500,
      maxBackoffMs: opts.maxBackoffMs || 5000,
    };
    this.auth = opts.auth || new TokenSource(opts);
    this.readyState = 0;
    this.attempt = 0;
    this.closed = true;
  }

  start() {
    if (this.ended || !this.closed) return this;
    this.closed = false;
    this.ctl = new AbortController();
    this.loop().catch((e) => {
      if (this.closed || isAbort(e)) return;
      this.closed = true;
      this.readyState = 2;
      this.ctl.abort();
      this.emit('status', { state: e instanceof AuthError ? 'signed-out' : 'error', detail: e.message, error: e });
      this.emit('error', e);
    });
    return this;
  }

  close() {
    this.ended = true;
    if (this.closed) return;
    this.closed = true;
    this.readyState = 2;
    this.ctl.abort();
    this.emit('status', { state: 'closed', detail: 'stopped' });
  }

  async loop() {
    const signal = this.ctl.signal;
    while (!this.closed) {
      this.readyState = 0;
      this.emit('status', { state: this.attempt ? 'reconnecting' : 'connecting', detail: 'event stream…', attempt: this.attempt });
      let control = null;
      let token;
      try {
        token = await this.auth.get();
        await openStream(this.path, {
          baseURL: this.o.baseURL,
          fetch: this.o.fetch,
          token,
          signal,
          idleMs: this.o.idleMs,
          firstByteMs: this.o.firstByteMs,
          onOpen: () => {
            this.auth.ok();
            this.attempt = 0;
            this.readyState = 1;
            this.emit('status', { state: 'live', detail: 'event stream' });
          },
          onFrame: (f) => {
            let env;
            try { env = JSON.parse(f.data); } catch { env = { data: f.data }; }
            if (!env || typeof env !== 'object') env = { data: env };
            if (!env.type) env.type = f.event;
            if (f.id && !env.id) env.id = f.id;
            if (env.type === 'token_expired' || (env.type === 'error' && env.data && /token|access/.test(env.data.code || ''))) {
              control = env;
              return;
            }
            this.emit('event', env);
            this.emit(env.type, env);
          },
        });
        if (control) {
          const d = control.data || {};
          await this.auth.rejected(new HextrackError(401, d.code || control.type, d.message || control.type), token);
          continue;
        }
        // The server ended the stream (a drain): back soon, jittered.
        this.readyState = 0;
        const ms = 100 + Math.random() * 900;
        this.emit('status', { state: 'reconnecting', detail: 'the server asked to reconnect', retryInMs: ms });
        await sleep(ms, signal);
      } catch (e) {
        if (isAbort(e) || this.closed) throw e;
        if (e instanceof AuthError) throw e;
        this.readyState = 0;
        if (isRejected(e)) {
          await this.auth.rejected(e, token);
          continue;
        }
        const ms = backoff(this.attempt++, this.o.backoffMs, this.o.maxBackoffMs);
        const why = e.status ? `HTTP ${e.status}${e.code ? ` ${e.code}` : ''}` : e.message;
        this.emit('status', { state: 'reconnecting', detail: `${why}; retrying in ${(ms / 1000).toFixed(1)} s`, attempt: this.attempt, retryInMs: ms, error: e });
        await sleep(ms, signal);
      }
    }
  }
}

// watchStream opens the event stream at path (e.g.
// "/v1/ops/drivers/stream?cells=…") and keeps it open until close().
// opts: {token | tokenProvider, baseURL, idleMs, firstByteMs, backoffMs,
// maxBackoffMs, fetch}.
export function watchStream(path, opts = {}) {
  const w = new StreamWatch(path, opts);
  queueMicrotask(() => w.start());
  return w;
}
