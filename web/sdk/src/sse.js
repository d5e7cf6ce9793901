// One Server-Sent Events reader over fetch (not EventSource), for two
// reasons: every frame reaches one callback whatever its event name (an
// EventSource listener list that misses a type drops it silently), and a
// refused stream reports its HTTP status and error code (401: token
// rejected, 404: no such stream), which EventSource hides behind one
// "error" event. The token goes in the Authorization header, not the URL.
import { HextrackError, fromBody } from './errors.js';
import { join, linked } from './http.js';

// openStream reads the event stream at path until it ends, the signal
// aborts, or the connection breaks. opts: {baseURL, token, signal,
// headers, fetch, onOpen(res), onData() (each chunk of the body: the
// stream is flowing), onFrame({event, id, data}), idleMs, firstByteMs}.
//
// It resolves when the server ends the stream, and rejects with an
// AbortError or a HextrackError: the server's status and code when it
// refused the stream; status 0 with code "network" when unreachable or
// broken, "idle" when silent for idleMs (the server sends a heartbeat
// every 15 s), "buffered" when no byte of the body came within
// firstByteMs of the response (the server writes `retry:` at once: a
// proxy is holding the stream back).
export async function openStream(path, opts) {
  const h = { Accept: 'text/event-stream', ...(opts.headers || {}) };
  if (opts.token) h.Authorization = `Bearer ${opts.token}`;
  const [ctl, detach] = linked(opts.signal);
  const idleMs = opts.idleMs || 45000;
  let why = '';
  let timer;
  const arm = (ms, reason) => {
    clearTimeout(timer);
    timer = setTimeout(() => { why = reason; ctl.abort(); }, ms);
  };
  const fail = (e, fallback) => {
    if (why === 'idle') return new HextrackError(0, 'idle', 'connection silent (no heartbeat)');
    if (why === 'buffered') return new HextrackError(0, 'buffered', 'no data on the event stream: a proxy may be buffering it');
    if (e && e.name === 'AbortError') return e;
    return new HextrackError(0, 'network', fallback, { cause: e });
  };
  try {
    arm(opts.firstByteMs || idleMs, opts.firstByteMs ? 'buffered' : 'idle');
    let res;
    try {
      res = await (opts.fetch || globalThis.fetch)(join(opts.baseURL, path), { headers: h, signal: ctl.signal, cache: 'no-store' });
    } catch (e) {
      throw fail(e, 'server unreachable');
    }
    if (!res.ok) {
      let json = null;
      try { json = await res.json(); } catch { json = null; }
      throw fromBody(res.status, json, res.statusText);
    }
    const ct = res.headers.get('Content-Type') || '';
    if (!ct.startsWith('text/event-stream')) {
      throw new HextrackError(res.status, 'not_event_stream', `expected an event stream, got ${ct || 'no content type'}`);
    }
    if (opts.onOpen) opts.onOpen(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let frame = { event: '', id: '', data: [] };
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw fail(e, 'connection lost');
      }
      if (chunk.done) return;
      arm(idleMs, 'idle');
      if (opts.onData) opts.onData();
      buf += chunk.value;
      let nl;
      while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
        // A lone \r at the end may be the first half of \r\n: wait.
        if (buf[nl] === '\r' && nl === buf.length - 1) break;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (frame.data.length) opts.onFrame({ event: frame.event || 'message', id: frame.id, data: frame.data.join('\n') });
          frame = { event: '', id: '', data: [] };
          continue;
        }
        if (line[0] === ':') continue; // comment (heartbeat)
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let value = c < 0 ? '' : line.slice(c + 1);
        if (value[0] === ' ') value = value.slice(1);
        if (field === 'event') frame.event = value;
        else if (field === 'id') frame.id = value;
        else if (field === 'data') frame.data.push(value);
      }
    }
  } finally {
    clearTimeout(timer);
    detach();
  }
}
