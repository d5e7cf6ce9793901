// The pages' one SSE reader (src/lib/stream.js), in Node against a tiny
// HTTP server: every frame reaches the one callback whatever its event
// name (no list of types to forget), a refused stream reports its status,
// and a silent connection is given up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { openStream } from '../src/lib/stream.js';

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
      (e) => e.status === 401 && e.code === 'invalid_token');
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
