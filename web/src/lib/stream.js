// One Server-Sent Events reader for every stream the pages open (trip
// feeds, the ops viewport and summary), over fetch instead of
// EventSource, for two reasons:
//   - every frame reaches one callback whatever its event name, so no
//     page keeps a list of event types to listen for (EventSource only
//     dispatches named events to listeners registered by name: a type
//     missing from such a list was silently dropped);
//   - a refused stream reports its HTTP status (401: token rejected, 404:
//     no such stream on this server), which EventSource hides behind one
//     "error" event; the token goes in the Authorization header.
import { ApiError } from './api.js';

// openStream reads the event stream at path until it ends, the signal
// aborts, or the connection breaks. onOpen() runs once the server has
// accepted the stream; onFrame({event, id, data}) runs for every frame
// (event defaults to "message"). It resolves when the server ends the
// stream and rejects with an ApiError (status 0: unreachable, broken, or
// silent for idleMs: the server sends a heartbeat every 15 s, so a
// connection that dropped without a word is noticed too) or an AbortError.
export async function openStream(path, { token, signal, onOpen, onFrame, headers = {}, idleMs = 45000 }) {
  const h = { Accept: 'text/event-stream', ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  const ctl = new AbortController();
  const abort = () => ctl.abort();
  if (signal) {
    if (signal.aborted) ctl.abort();
    signal.addEventListener('abort', abort, { once: true });
  }
  let silent = false;
  let idle;
  const alive = () => {
    clearTimeout(idle);
    idle = setTimeout(() => { silent = true; ctl.abort(); }, idleMs);
  };
  try {
    return await read(path, h, ctl.signal, alive, () => silent, onOpen, onFrame);
  } finally {
    clearTimeout(idle);
    if (signal) signal.removeEventListener('abort', abort);
  }
}

async function read(path, h, signal, alive, silent, onOpen, onFrame) {
  let res;
  alive();
  try {
    res = await fetch(path, { headers: h, signal, cache: 'no-store' });
  } catch (e) {
    if (silent()) throw new ApiError(0, 'network', 'server not answering');
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'server unreachable');
  }
  if (!res.ok) {
    let json = null;
    try { json = await res.json(); } catch { json = null; }
    const e = (json && json.error) || {};
    throw new ApiError(res.status, e.code, e.message || res.statusText, json);
  }
  if (onOpen) onOpen(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let frame = { event: '', id: '', data: [] };
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (silent()) throw new ApiError(0, 'network', 'connection silent (no heartbeat)');
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'connection lost');
    }
    if (chunk.done) return;
    alive();
    buf += chunk.value;
    let nl;
    while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
      if (line === '') {
        if (frame.data.length) onFrame({ event: frame.event || 'message', id: frame.id, data: frame.data.join('\n') });
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
}
