// @hextrack/client's driver channel against the real server: pings go up
// over WebSocket and REST, pings sent while the server is down wait in
// the offline buffer and go up after its restart, a command whose
// handling failed is not acked and comes again on the next connection,
// a handled one does not, trip actions over the socket, and "auto" on a
// path without WebSocket uses REST.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, until } from './harness.mjs';

// until with room for a loaded 2-core machine (several servers at once).
const wait = (fn, o = {}) => until(fn, { timeout: 30000, ...o });
import { driverReady, requestTrip, offset, record, dropKeys } from './sdk-env.mjs';
import { connectDriver, HextrackError, AuthError } from '../sdk/index.js';

if (typeof WebSocket !== 'function') throw new Error('these tests need a WebSocket: Node 22+, or node --experimental-websocket (npm test passes it)');

const fast = { backoffMs: 100, maxBackoffMs: 500, flushMs: 300, probeMs: 500, maxProbeMs: 2000, waitS: 2 };
const redisURL = process.env.HEXTRACK_TEST_REDIS_URL || 'redis://127.0.0.1:6379/0';

function memory() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)) };
}

async function lastSeq(server, driverId) {
  const ops = await server.token('ops', 'ops_sdk');
  const r = await server.api('GET', `/v1/drivers/${driverId}`, { token: ops });
  return r.status === 200 ? r.body.last_seq : null;
}

for (const mode of ['ws', 'rest']) {
  test(`${mode}: pings queued while the server is down go up after its restart`, { timeout: 90000 }, async () => {
    const prefix = `webtest:sdk-driver-${mode}:${Date.now()}:`;
    const a = await new Server({ redisURL, prefix }).start();
    let b;
    try {
      const d = await driverReady(a);
      const ch = connectDriver(d.driverId, { baseURL: a.url, token: d.driverTok, mode, ...fast });
      try {
        const states = record(ch, 'status');
        await wait(() => states.some((s) => s.state === 'live' && s.via === mode), { what: `live over ${mode}` });
        let seq = Date.now();
        let p = offset(d.c, 300, 200);
        const send = () => {
          p = offset(p, 10, 60);
          ch.send({ lat: p.lat, lng: p.lng, ts: new Date().toISOString(), seq: ++seq, heading: 60, speed: 8 });
        };
        send();
        await wait(() => ch.queued === 0, { what: 'first ping acked' });
        await a.stop();
        await wait(() => states.some((s) => s.state === 'reconnecting'), { what: 'reconnecting' });
        for (let i = 0; i < 5; i++) send();
        assert.ok(ch.queued >= 1, 'pings wait in the offline buffer');
        b = await new Server({ redisURL, prefix, port: a.port }).start();
        await wait(() => ch.queued === 0, { what: 'buffer flushed after the restart', timeout: 30000 });
        assert.equal(await lastSeq(b, d.driverId), seq, 'the last queued ping reached the server');
      } finally {
        ch.close();
      }
    } finally {
      if (b) await b.stop();
      await a.stop();
      dropKeys(redisURL, prefix);
    }
  });
}

test('driver channel', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());

  for (const mode of ['ws', 'rest']) {
    await t.test(`${mode}: a command whose handling failed comes again; a handled one is acked`, async () => {
      const d = await driverReady(server);
      const storage = memory();
      const ch1 = connectDriver(d.driverId, { baseURL: server.url, token: d.driverTok, mode, storage, ...fast });
      const errors = record(ch1, 'error');
      let offered = null;
      ch1.on('command', (cmd) => {
        if (cmd.type !== 'offer') return;
        offered = cmd;
        throw new Error('the page could not show it');
      });
      const { tripId } = await requestTrip(server, d.c);
      try {
        await wait(() => offered, { what: 'the offer' });
        await wait(() => errors.some((e) => e instanceof HextrackError && e.code === 'command_failed'), { what: 'command_failed' });
      } finally {
        ch1.close();
      }
      // A new connection (same storage): the offer again, since unacked.
      const ch2 = connectDriver(d.driverId, { baseURL: server.url, token: d.driverTok, mode, storage, ...fast });
      const again = [];
      ch2.on('command', (cmd) => { if (cmd.type === 'offer') again.push(cmd); });
      try {
        await wait(() => again.length, { what: 'the offer replayed' });
        assert.equal(again[0].id, offered.id);
        assert.equal(again[0].data.trip_id || again[0].data.trip?.id || tripId, tripId);
        // Handled, so acked: the server has nothing left to replay.
        await wait(async () => {
          const r = await server.api('GET', `/v1/drivers/${d.driverId}/commands?wait=0`, { token: d.driverTok });
          return r.status === 200 && r.body.commands.every((c) => c.id !== offered.id);
        }, { what: 'the offer acked' });
      } finally {
        ch2.close();
      }
    });
  }

  await t.test('ws: trip actions over the socket answer with the trip', async () => {
    const d = await driverReady(server);
    const ch = connectDriver(d.driverId, { baseURL: server.url, token: d.driverTok, mode: 'ws', ...fast });
    try {
      const offers = [];
      ch.on('command', (cmd) => { if (cmd.type === 'offer') offers.push(cmd); });
      const states = record(ch, 'status');
      await wait(() => states.some((s) => s.state === 'live' && s.via === 'ws'), { what: 'live over ws' });
      const { tripId } = await requestTrip(server, d.c);
      await wait(() => offers.length, { what: 'the offer' });
      const snap = await ch.act('accept', tripId);
      assert.equal(snap.trip.status, 'driver_assigned');
      await assert.rejects(ch.act('complete', tripId), (e) => e instanceof HextrackError && e.code === 'invalid_transition');
    } finally {
      ch.close();
    }
  });

  const badSignature = (tok) => tok.slice(0, -4) + (tok.endsWith('AAAA') ? 'BBBB' : 'AAAA');

  await t.test('ws: a rejected token is refreshed through the provider', async () => {
    const d = await driverReady(server);
    const calls = [];
    const ch = connectDriver(d.driverId, {
      baseURL: server.url, mode: 'ws', ...fast,
      tokenProvider: ({ refresh }) => { calls.push(refresh); return refresh ? d.driverTok : badSignature(d.driverTok); },
    });
    try {
      const states = record(ch, 'status');
      await wait(() => states.some((s) => ['live', 'resumed'].includes(s.state) && s.via === 'ws'), { what: 'live over ws with the fresh token' });
      assert.deepEqual(calls, [false, true]);
    } finally {
      ch.close();
    }
  });

  for (const mode of ['ws', 'auto', 'rest']) {
    await t.test(`${mode}: a refreshed token rejected too ends in an AuthError, no more retries`, async () => {
      const d = await driverReady(server);
      let calls = 0;
      const ch = connectDriver(d.driverId, {
        baseURL: server.url, mode, ...fast,
        tokenProvider: () => { calls++; return badSignature(d.driverTok); },
      });
      const errors = record(ch, 'error');
      const states = record(ch, 'status');
      await wait(() => errors.some((e) => e instanceof AuthError), { what: 'AuthError' });
      const err = errors.find((e) => e instanceof AuthError);
      assert.equal(err.status, 401);
      assert.ok(err.code);
      assert.equal(calls, 2, 'the first token and one refresh');
      assert.ok(states.some((s) => s.state === 'signed-out'));
      assert.equal(ch.closed, true);
    });
  }

  await t.test('auto: without a working WebSocket the channel uses REST', async () => {
    const d = await driverReady(server);
    // A WebSocket that never opens, as behind a proxy that refuses upgrades.
    class NoSocket {
      constructor() { setTimeout(() => this.onclose && this.onclose({ code: 1006 }), 10); }
      send() { throw new Error('not open'); }
      close() {}
    }
    const ch = connectDriver(d.driverId, { baseURL: server.url, token: d.driverTok, WebSocket: NoSocket, ...fast });
    try {
      const states = record(ch, 'status');
      await wait(() => states.some((s) => s.state === 'live' && s.via === 'rest'), { what: 'REST' });
      const seq = Date.now() + 1000;
      const p = offset(d.c, 320, 200);
      ch.send({ lat: p.lat, lng: p.lng, ts: new Date().toISOString(), seq });
      await wait(() => ch.queued === 0, { what: 'ping acked over REST' });
      assert.equal(await lastSeq(server, d.driverId), seq);
    } finally {
      ch.close();
    }
  });
});
