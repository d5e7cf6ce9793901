// Small fetch wrapper speaking hextrack's JSON API: bearer token, JSON
// bodies, and the one error shape {"error":{"code","message"}}.

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
    this.body = body;
  }
}

// True when the error means "this server has no such endpoint (yet)".
export function isMissing(err) {
  return err instanceof ApiError && (err.status === 404 || err.status === 405 || err.status === 501);
}

// True when the request never reached a server (down, restarting, offline).
export function isNetwork(err) {
  return err instanceof ApiError && err.status === 0;
}

// request performs one API call. opts: {method, token, body, headers,
// signal, raw}. With raw the Response is returned for 2xx/304 (ETag
// polling); otherwise the parsed JSON (or null for 204).
export async function request(path, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res;
  try {
    res = await fetch(path, { method: opts.method || 'GET', headers, body, signal: opts.signal, cache: 'no-store' });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'server unreachable');
  }
  if (opts.raw && (res.ok || res.status === 304)) return res;
  const text = await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!res.ok) {
    const e = (json && json.error) || {};
    throw new ApiError(res.status, e.code, e.message || res.statusText, json);
  }
  return json;
}

// idKey returns a random id usable as an Idempotency-Key or client message
// id. crypto.randomUUID needs a secure context; getRandomValues does not.
export function idKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// sleep resolves after ms, or early (rejecting) when signal aborts.
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    if (signal) {
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new DOMException('aborted', 'AbortError'));
      }, { once: true });
    }
  });
}

// True when the server refused the caller's token (bad signature, revoked,
// expired): retrying with the same token can never succeed.
export function isRejected(err) {
  return err instanceof ApiError && err.status === 401;
}

// backoff returns the delay before reconnect attempt n (0-based): capped
// exponential with jitter so a restarted server isn't hit all at once. The
// 5 s cap keeps a page live again within seconds of a server's return.
export function backoff(n, base = 500, cap = 5000) {
  const max = Math.min(cap, base * 2 ** Math.min(n, 10));
  return Math.round(max / 2 + Math.random() * (max / 2));
}
