// @hextrack/client's SSE reader (openStream) and watchTrip's one listener
// API, in Node against a tiny HTTP server: every frame reaches the one
// callback whatever its event name (no list of types to forget) on every
// transport, a refused stream reports its status and code, a silent
// connection is given up, and a stream held back is told apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { openStream, watchTrip, HextrackError } from '../sdk/index.js';

async function serve(handler) {
  const srv = http.createServer(handler);
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${srv.address().port}`;
  return { url, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(r); }) };
}

test('every frame reaches onFrame, whatever its event name', async () => {
  const s = await serve((req, res) => {
    assert.equal(req.headers.authorization, 'Bearer tok');
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write(': heartbeat\n\n');
    res.write('id: 1-0\nevent: trip.arriving\ndata: {"eta_s":42}\n\n');
    res.write('event: trip.some_future_type\r\ndata: {"a":1}\r\n\r\n');
    res.write('data: line one\ndata: line two\n\n');
    res.end('event: trip.status\ndata: {"status":"driver_arrived"}\n\n');
  });
  try {
    const frames = [];
    let opened = 0;
    await openStream(`${s.url}/x`, { token: 'tok', onOpen: () => opened++, onFrame: (f) => frames.push(f) });
    assert.equal(opened, 1);
    assert.deepEqual(frames, [
      { event: 'trip.arriving', id: '1-0', data: '{"eta_s":42}' },
      { event: 'trip.some_future_type', id: '', data: '{"a":1}' },
      { event: 'message', id: '', data: 'line one\nline two' },
      { event: 'trip.status', id: '', data: '{"status":"driver_arrived"}' },
    ]);
  } finally {
    await s.close();
  }
});

test('a refused stream rejects with its HTTP status and error code', async () => {
  const s = await serve((req, res) => {
    res.writeHead(401, { 'Content-Type': 'application/json' });
    res.end('{"error":{"code":"invalid_token","message":"bad signature"}}');
  });
  try {
    await assert.rejects(openStream(`${s.url}/x`, { token: 't', onFrame: () => {} }),
      (e) => e instanceof HextrackError && e.status === 401 && e.code === 'invalid_token');
  } finally {
    await s.close();
  }
});

test('a connection silent past idleMs is given up as a network error', async () => {
  const s = await serve((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write(': hello\n\n'); // then nothing, not even heartbeats
  });
  try {
    const t0 = Date.now();
    await assert.rejects(openStream(`${s.url}/x`, { idleMs: 300, onFrame: () => {} }), (e) => e.status === 0);
    assert.ok(Date.now() - t0 < 3000);
  } finally {
    await s.close();
  }
});

test('an unreachable server rejects with status 0', async () => {
  const s = await serve(() => {});
  const { url } = s;
  await s.close();
  await assert.rejects(openStream(`${url}/x`, { onFrame: () => {} }), (e) => e.status === 0);
});

test('no byte within firstByteMs is reported as a buffered stream', async () => {
  const s = await serve(() => {}); // never answers, like a buffering proxy
  try {
    await assert.rejects(openStream(`${s.url}/x`, { firstByteMs: 300, onFrame: () => {} }), (e) => e.status === 0 && e.code === 'buffered');
  } finally {
    await s.close();
  }
});

// A fake trip: its snapshot, then trip.arriving and a type no client
// knows yet, on SSE and as JSON (long-poll and ETag polling).
function fakeTrip() {
  const snap = { trip: { id: 't1', status: 'driver_assigned' }, feed_position: '100-0', location: null, eta: null };
  const evs = [
    { id: '101-0', type: 'trip.arriving', topic: 'trip:t1', ts: new Date().toISOString(), data: { trip_id: 't1', eta_s: 42 } },
    { id: '102-0', type: 'trip.some_future_type', topic: 'trip:t1', ts: new Date().toISOString(), data: { a: 1 } },
  ];
  return (req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/v1/trips/t1') {
      res.writeHead(200, { 'Content-Type': 'application/json', ETag: '"1.0"' });
      res.end(JSON.stringify(snap));
      return;
    }
    if (u.pathname !== '/v1/trips/t1/events') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"error":{"code":"not_found","message":"no"}}');
      return;
    }
    if (/text\/event-stream/.test(req.headers.accept)) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('retry: 2000\n\n');
      res.write(`id: 100-0\nevent: snapshot\ndata: ${JSON.stringify({ type: 'snapshot', data: snap })}\n\n`);
      for (const e of evs) res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
      return; // stays open
    }
    const after = u.searchParams.get('after') || '';
    const out = evs.filter((e) => e.id > after);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ events: out, next: out.length ? out[out.length - 1].id : after }));
  };
}

for (const transport of ['sse', 'longpoll', 'poll']) {
  test(`${transport}: on('event') gets every type (trip.arriving, unknown ones); on(type) too`, async () => {
    const s = await serve(fakeTrip());
    const w = watchTrip('t1', { baseURL: s.url, token: 'tok', transport, pollMs: 200, waitS: 1 });
    try {
      const types = [];
      const arriving = [];
      w.on('event', (e) => types.push(e.type));
      w.on('trip.arriving', (e) => arriving.push(e));
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only ${types}`)), 10000);
        w.on('event', () => { if (types.includes('trip.some_future_type')) { clearTimeout(t); resolve(); } });
      });
      assert.deepEqual(types, ['snapshot', 'trip.arriving', 'trip.some_future_type']);
      assert.equal(arriving.length, 1);
      assert.equal(arriving[0].data.eta_s, 42);
    } finally {
      w.close();
      await s.close();
    }
  });
}
