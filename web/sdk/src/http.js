// The JSON API over fetch: bearer token, JSON bodies, the one error shape,
// and the timing helpers the transports share.
import { HextrackError, fromBody, abortError } from './errors.js';

// join puts path under baseURL ("" or undefined: relative to the page).
export function join(baseURL, path) {
  if (!baseURL || /^[a-z]+:\/\//i.test(path)) return path;
  return baseURL.replace(/\/+$/, '') + path;
}

// request performs one API call. opts: {baseURL, method, token, body,
// headers, signal, raw, fetch}. With raw the Response is returned for
// 2xx/304 (ETag polling); otherwise the parsed JSON (null for 204).
// Failures reject with a HextrackError (status 0: no answer).
export async function request(path, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const f = opts.fetch || globalThis.fetch;
  let res;
  try {
    res = await f(join(opts.baseURL, path), { method: opts.method || 'GET', headers, body, signal: opts.signal, cache: 'no-store' });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new HextrackError(0, 'network', 'server unreachable', { cause: e });
  }
  if (opts.raw && (res.ok || res.status === 304)) return res;
  let text = '';
  try {
    text = await res.text();
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new HextrackError(0, 'network', 'connection lost', { cause: e });
  }
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!res.ok) throw fromBody(res.status, json, res.statusText);
  return json;
}

// sleep resolves after ms, or rejects with an AbortError when signal aborts.
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(abortError());
      return;
    }
    const done = () => {
      clearTimeout(t);
      reject(abortError());
    };
    const t = setTimeout(() => {
      if (signal) signal.removeEventListener('abort', done);
      resolve();
    }, ms);
    if (signal) signal.addEventListener('abort', done, { once: true });
  });
}

// backoff returns the delay before retry n (0-based): capped exponential
// with "equal jitter" (between half and all of the step), so clients of a
// restarted server don't come back all at once, and a page is live again
// within seconds of the server's return.
export function backoff(n, base = 500, cap = 5000) {
  const max = Math.min(cap, base * 2 ** Math.min(n, 16));
  return Math.round(max / 2 + Math.random() * (max / 2));
}

// randomId returns 32 hex characters, usable as an Idempotency-Key or a
// client message id (crypto.getRandomValues needs no secure context).
export function randomId() {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// linked returns an AbortController that also aborts when parent does,
// and a function that detaches it from parent.
export function linked(parent) {
  const c = new AbortController();
  if (!parent) return [c, () => {}];
  const abort = () => c.abort();
  if (parent.aborted) c.abort();
  else parent.addEventListener('abort', abort, { once: true });
  return [c, () => parent.removeEventListener('abort', abort)];
}
