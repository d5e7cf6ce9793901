// Helpers of the SDK tests (test/sdk*.test.mjs): a trip with a driver on
// the real server, a proxy that can hold SSE back like a buffering proxy,
// and clean-up of a test's Redis keys.
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { center, ping, until } from './harness.mjs';

// offset moves p by m meters towards bearing deg (flat earth, enough here).
export function offset(p, m, deg) {
  const r = (deg * Math.PI) / 180;
  return { lat: p.lat + (m * Math.cos(r)) / 111320, lng: p.lng + (m * Math.sin(r)) / (111320 * Math.cos((p.lat * Math.PI) / 180)) };
}

// driverReady puts a fresh available driver 300 m from the map's centre.
export async function driverReady(server, prefix = 'd_sdk') {
  const c = await center(server);
  const driverId = `${prefix}_${Math.random().toString(16).slice(2, 8)}`;
  const driverTok = await server.token('driver', driverId);
  const r = await ping(server, driverTok, driverId, offset(c, 300, 200), Date.now());
  if (r.status !== 200) throw new Error(`ping: ${r.status} ${JSON.stringify(r.body)}`);
  const st = await server.api('PUT', `/v1/drivers/${driverId}/status`, { token: driverTok, body: { status: 'available' } });
  if (st.status !== 200) throw new Error(`status: ${st.status}`);
  return { c, driverId, driverTok };
}

// requestTrip has a rider request a trip next to c.
export async function requestTrip(server, c, riderId = `r_sdk_${Math.random().toString(16).slice(2, 8)}`) {
  const riderTok = await server.token('rider', riderId);
  const r = await server.api('POST', '/v1/trips', { token: riderTok, body: { pickup: offset(c, 100, 90), dropoff: offset(c, 900, 45) } });
  if (r.status !== 201) throw new Error(`trip: ${r.status} ${JSON.stringify(r.body)}`);
  return { riderTok, tripId: r.body.trip.id, snap: r.body };
}

// accept has the driver accept once the offer reached it (403 before).
export async function accept(server, d, tripId) {
  return until(async () => {
    const r = await server.api('POST', `/v1/trips/${tripId}/accept`, { token: d.driverTok });
    return r.status === 403 ? null : r;
  }, { what: `the offer of ${tripId}, then accept`, timeout: 30000 });
}

// next resolves with the first value of emitter event name that pred
// accepts (or rejects after timeout ms).
export function next(em, name, pred = () => true, timeout = 30000) {
  return new Promise((resolve, reject) => {
    let off;
    const t = setTimeout(() => { off(); reject(new Error(`timed out waiting for ${name}`)); }, timeout);
    off = em.on(name, (v, meta) => {
      if (!pred(v, meta)) return;
      clearTimeout(t);
      off();
      resolve(v);
    });
  });
}

// record collects every value of emitter event name.
export function record(em, name) {
  const out = [];
  em.on(name, (v) => out.push(v));
  return out;
}

// proxy forwards to target; while buffer() is true it holds back every
// text/event-stream body (and its headers) like a buffering proxy does,
// and counts requests by kind.
// With cutLong() true it answers every long-poll (wait > 0) with a 504,
// like a proxy whose read timeout is shorter than the wait.
export async function proxy(target, { buffer = () => false, cutLong = () => false } = {}) {
  const counts = { sse: 0, plain: 0, cut: 0 };
  const open = new Set();
  const srv = http.createServer((req, res) => {
    const sse = /text\/event-stream/.test(req.headers.accept || '');
    counts[sse ? 'sse' : 'plain']++;
    const wait = Number(new URL(req.url, 'http://x').searchParams.get('wait'));
    if (!sse && wait > 0 && cutLong()) {
      counts.cut++;
      res.writeHead(504, { 'Content-Type': 'text/plain' });
      res.end('gateway timeout');
      return;
    }
    const u = new URL(target);
    const up = http.request({ host: u.hostname, port: u.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      if (sse && buffer()) {
        const chunks = [];
        ur.on('data', (b) => chunks.push(b));
        ur.on('end', () => { res.writeHead(ur.statusCode, ur.headers); res.end(Buffer.concat(chunks)); });
        return;
      }
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    open.add(up);
    up.on('close', () => open.delete(up));
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    counts,
    close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(r); }),
  };
}

// dropKeys deletes a test's Redis keys (best effort: needs redis-cli).
export function dropKeys(redisURL, prefix) {
  try {
    const keys = execFileSync('redis-cli', ['-u', redisURL, '--scan', '--pattern', `${prefix}*`], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (let i = 0; i < keys.length; i += 500) execFileSync('redis-cli', ['-u', redisURL, 'del', ...keys.slice(i, i + 500)]);
  } catch { /* no redis-cli: the keys expire with their TTLs */ }
}
