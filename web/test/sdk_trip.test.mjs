// @hextrack/client's watchTrip against the real server: every transport
// delivers every event (snapshot first, each durable event once, in
// order), resume by Last-Event-ID, an explicit reset, a rejected token
// refreshed once and a rejected refresh surfaced as an AuthError, the
// automatic fall-back from an SSE stream a proxy holds back, and back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, until } from './harness.mjs';

// until with room for a loaded 2-core machine (several servers at once).
const wait = (fn, o = {}) => until(fn, { timeout: 30000, ...o });
import { driverReady, requestTrip, accept, next, record, proxy, dropKeys } from './sdk-env.mjs';
import { watchTrip, AuthError, HextrackError, TripGoneError, compareIds } from '../sdk/index.js';

const fast = { backoffMs: 100, maxBackoffMs: 500, pollMs: 300 };

// durable returns the durable events (with an id) of a recorded list.
const durable = (evs) => evs.filter((e) => e.id && e.type !== 'snapshot' && e.type !== 'reset');

function assertOnceInOrder(evs) {
  const ids = durable(evs).map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, `no event twice: ${ids}`);
  for (let i = 1; i < ids.length; i++) assert.ok(compareIds(ids[i - 1], ids[i]) < 0, `in order: ${ids}`);
}

// badSignature returns tok with its signature broken.
const badSignature = (tok) => tok.slice(0, -4) + (tok.endsWith('AAAA') ? 'BBBB' : 'AAAA');

test('watchTrip', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());

  for (const transport of ['sse', 'longpoll', 'poll']) {
    await t.test(`${transport}: a snapshot first, then every event once and in order`, async () => {
      const d = await driverReady(server);
      const { riderTok, tripId } = await requestTrip(server, d.c);
      const w = watchTrip(tripId, { baseURL: server.url, token: riderTok, transport, ...fast });
      try {
        const evs = record(w, 'event');
        const states = record(w, 'status');
        await next(w, 'status', (s) => s.state === 'live');
        assert.equal(w.transport, transport);
        await wait(() => evs.length, { what: 'first event' });
        assert.equal(evs[0].type, 'snapshot');
        assert.equal(evs[0].data.trip.id, tripId);
        const acc = await accept(server, d, tripId);
        assert.equal(acc.status, 200, JSON.stringify(acc.body));
        const arr = await server.api('POST', `/v1/trips/${tripId}/arrived`, { token: d.driverTok });
        assert.equal(arr.status, 200, JSON.stringify(arr.body));
        await wait(() => evs.some((e) => e.data && e.data.status === 'driver_arrived'), { what: 'driver_arrived event' });
        assert.ok(evs.some((e) => e.type === 'trip.assigned'), `trip.assigned among ${evs.map((e) => e.type)}`);
        // A type listener gets the same envelopes as on('event').
        assertOnceInOrder(evs);
        assert.ok(states.every((s) => s.transport === transport));
      } finally {
        w.close();
      }
    });
  }

  for (const transport of ['sse', 'longpoll']) {
    await t.test(`${transport}: resume after a given Last-Event-ID replays only what came after`, async () => {
      const d = await driverReady(server);
      const { riderTok, tripId, snap } = await requestTrip(server, d.c);
      assert.equal((await accept(server, d, tripId)).status, 200);
      assert.equal((await server.api('POST', `/v1/trips/${tripId}/arrived`, { token: d.driverTok })).status, 200);
      const w = watchTrip(tripId, { baseURL: server.url, token: riderTok, transport, lastEventId: snap.feed_position, ...fast });
      try {
        const evs = record(w, 'event');
        await wait(() => evs.some((e) => e.data && e.data.status === 'driver_arrived'), { what: 'replayed driver_arrived' });
        assert.ok(!evs.some((e) => e.type === 'snapshot'), 'a resume sends no snapshot');
        assert.ok(durable(evs).every((e) => compareIds(e.id, snap.feed_position) > 0));
        assertOnceInOrder(evs);
        assert.ok(compareIds(w.lastEventId, snap.feed_position) > 0);
      } finally {
        w.close();
      }
    });

    await t.test(`${transport}: an ID the server can't resume from gives a reset with a fresh snapshot`, async () => {
      const d = await driverReady(server);
      const { riderTok, tripId } = await requestTrip(server, d.c);
      const w = watchTrip(tripId, { baseURL: server.url, token: riderTok, transport, lastEventId: '1-0', ...fast });
      try {
        const states = record(w, 'status');
        const reset = await next(w, 'reset');
        assert.equal(reset.data.trip.id, tripId);
        assert.ok(reset.data.feed_position);
        await wait(() => states.some((s) => s.state === 'reset' || s.state === 'live'), { what: 'reset or live' });
        assert.equal(w.lastEventId, reset.data.feed_position);
      } finally {
        w.close();
      }
    });

    await t.test(`${transport}: a rejected token is refreshed through the provider`, async () => {
      const d = await driverReady(server);
      const { riderTok, tripId } = await requestTrip(server, d.c);
      const calls = [];
      const w = watchTrip(tripId, {
        baseURL: server.url,
        transport,
        ...fast,
        tokenProvider: async ({ refresh }) => {
          calls.push(refresh);
          return refresh ? riderTok : badSignature(riderTok);
        },
      });
      try {
        const evs = record(w, 'event');
        await next(w, 'status', (s) => s.state === 'live');
        assert.deepEqual(calls, [false, true]);
        assert.equal((await accept(server, d, tripId)).status, 200);
        await wait(() => evs.some((e) => e.type === 'trip.assigned'), { what: 'trip.assigned' });
      } finally {
        w.close();
      }
    });

    await t.test(`${transport}: a refreshed token rejected too ends in an AuthError, no more retries`, async () => {
      const d = await driverReady(server);
      const { riderTok, tripId } = await requestTrip(server, d.c);
      let calls = 0;
      const w = watchTrip(tripId, {
        baseURL: server.url,
        transport,
        ...fast,
        tokenProvider: async () => { calls++; return badSignature(riderTok); },
      });
      const err = await next(w, 'error');
      assert.ok(err instanceof AuthError);
      assert.ok(err instanceof HextrackError);
      assert.equal(err.status, 401);
      assert.ok(err.code, 'the server\'s error code');
      assert.equal(calls, 2, 'the first token and one refresh');
      assert.equal(w.closed, true);
    });
  }

  await t.test('auto: an SSE stream held back by a proxy falls back to long-poll, and back to SSE when it flows', async () => {
    let holding = true;
    const px = await proxy(server.url, { buffer: () => holding });
    try {
      const d = await driverReady(server);
      const { riderTok, tripId } = await requestTrip(server, d.c);
      const w = watchTrip(tripId, { baseURL: px.url, token: riderTok, firstByteMs: 1000, probeMs: 1500, ...fast });
      try {
        const evs = record(w, 'event');
        const st = await next(w, 'status', (s) => s.state === 'live');
        assert.equal(st.transport, 'longpoll', JSON.stringify(st));
        assert.ok(px.counts.sse >= 1 && px.counts.plain >= 1);
        assert.equal((await accept(server, d, tripId)).status, 200);
        await wait(() => evs.some((e) => e.type === 'trip.assigned'), { what: 'trip.assigned over long-poll' });
        holding = false;
        await next(w, 'status', (s) => s.transport === 'sse' && ['live', 'resumed'].includes(s.state), 30000);
        assert.equal((await server.api('POST', `/v1/trips/${tripId}/arrived`, { token: d.driverTok })).status, 200);
        await wait(() => evs.some((e) => e.data && e.data.status === 'driver_arrived'), { what: 'driver_arrived over SSE' });
        assertOnceInOrder(evs);
      } finally {
        w.close();
      }
    } finally {
      await px.close();
    }
  });

  await t.test('auto: long requests cut by a proxy as well: ETag polling', async () => {
    const px = await proxy(server.url, { buffer: () => true, cutLong: () => true });
    try {
      const d = await driverReady(server);
      const { riderTok, tripId } = await requestTrip(server, d.c);
      const w = watchTrip(tripId, { baseURL: px.url, token: riderTok, firstByteMs: 1000, probeMs: 60000, ...fast });
      try {
        const evs = record(w, 'event');
        const states = record(w, 'status');
        await wait(() => states.some((s) => s.transport === 'poll' && s.state === 'live'), { what: 'live on ETag polling' });
        assert.ok(px.counts.cut >= 2, 'long-polls were cut');
        assert.equal((await accept(server, d, tripId)).status, 200);
        await wait(() => evs.some((e) => e.type === 'trip.assigned'), { what: 'trip.assigned over ETag polling' });
        assertOnceInOrder(evs);
      } finally {
        w.close();
      }
    } finally {
      await px.close();
    }
  });
});

// The restart needs state that outlives the process: a real Redis with a
// key prefix of its own.
const redisURL = process.env.HEXTRACK_TEST_REDIS_URL || 'redis://127.0.0.1:6379/0';

for (const transport of ['sse', 'longpoll', 'poll']) {
  test(`${transport}: a server restart is resumed by ID, the missed event replayed once`, { timeout: 90000 }, async () => {
    const prefix = `webtest:sdk-resume-${transport}:${Date.now()}:`;
    const a = await new Server({ redisURL, prefix }).start();
    let b;
    try {
      const d = await driverReady(a);
      const { riderTok, tripId } = await requestTrip(a, d.c);
      const w = watchTrip(tripId, { baseURL: a.url, token: riderTok, transport, ...fast });
      try {
        const evs = record(w, 'event');
        const states = record(w, 'status');
        assert.equal((await accept(a, d, tripId)).status, 200);
        // As an event, or in a snapshot when the first connection had to
        // be made again (a loaded machine) before the watcher had a position.
        const assigned = () => evs.some((e) => e.type === 'trip.assigned' || (e.data && e.data.trip && e.data.trip.status === 'driver_assigned'));
        await wait(assigned, { what: 'trip.assigned' }).catch((e) => {
          throw new Error(`${e.message}; events: ${evs.map((x) => x.type)}; states: ${states.map((x) => `${x.state} (${x.detail})`).join(' | ')}`);
        });
        const before = states.length;
        assert.ok(states.every((s) => s.state !== 'reconnecting' || s.transport === transport));
        await a.stop();
        await wait(() => states.slice(before).some((s) => s.state === 'reconnecting'), { what: 'reconnecting' });
        b = await new Server({ redisURL, prefix, port: a.port }).start();
        // Sent while the watcher is not connected: it must be replayed.
        assert.equal((await b.api('POST', `/v1/trips/${tripId}/arrived`, { token: d.driverTok })).status, 200);
        const st = await wait(() => states.slice(before).find((s) => s.state === 'resumed' || s.state === 'reset'), { what: 'resumed', timeout: 30000 });
        await wait(() => evs.some((e) => e.data && e.data.status === 'driver_arrived'), { what: 'driver_arrived after the restart' });
        if (st.state === 'resumed') assert.ok(st.resumes >= 1);
        assertOnceInOrder(evs);
      } finally {
        w.close();
      }
    } finally {
      if (b) await b.stop();
      await a.stop();
      dropKeys(redisURL, prefix);
    }
  });
}

// A trip the server does not know (its feed and the trip itself answer
// 404: lost before it was archived) stops the watcher with a
// TripGoneError on every transport: no stepping down, no retrying.
test('watchTrip: a trip the server does not know ends in a TripGoneError', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const riderTok = await server.token('rider', 'r_sdk_gone');
  for (const transport of ['auto', 'longpoll', 'poll']) {
    await t.test(transport, async () => {
      let requests = 0;
      const counting = (u, o) => { requests++; return fetch(u, o); };
      const w = watchTrip('t_no_such_trip_0000', { baseURL: server.url, token: riderTok, transport, fetch: counting, ...fast, lastEventId: transport === 'poll' ? '' : '1-0' });
      const err = await next(w, 'error');
      assert.ok(err instanceof TripGoneError, `${err && err.name}: ${err && err.message}`);
      assert.equal(err.status, 404);
      assert.equal(w.transport, transport === 'auto' ? 'sse' : transport, 'no stepping down');
      const n = requests;
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(requests, n, 'nothing more after the error');
      w.close();
    });
  }
});
