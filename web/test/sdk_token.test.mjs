// @hextrack/client's TokenSource: the token provider is asked once per
// rejection however many requests saw the same rejected token, a
// refreshed token rejected too is an AuthError, and one that worked
// allows a later refresh (the token expires again hours later); a watcher
// closed before its start never connects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenSource, HextrackError, AuthError } from '../sdk/index.js';

const rejected = () => new HextrackError(401, 'invalid_token', 'bad signature');

test('requests that saw the same rejected token share one refresh', async () => {
  const calls = [];
  let n = 0;
  const ts = new TokenSource({ tokenProvider: async ({ refresh }) => { calls.push(refresh); return `t${n++}`; } });
  const old = await ts.get();
  assert.equal(old, 't0');
  const [a, b] = await Promise.all([ts.rejected(rejected(), old), ts.rejected(rejected(), old)]);
  assert.equal(a, 't1');
  assert.equal(b, 't1');
  // A third request with the old token, answered after the refresh.
  assert.equal(await ts.rejected(rejected(), old), 't1');
  assert.deepEqual(calls, [false, true]);
});

test('a refreshed token rejected before any success is an AuthError', async () => {
  const ts = new TokenSource({ tokenProvider: async ({ refresh }) => (refresh ? 'fresh' : 'old') });
  await ts.get();
  assert.equal(await ts.rejected(rejected(), 'old'), 'fresh');
  await assert.rejects(ts.rejected(rejected(), 'fresh'), (e) => e instanceof AuthError && e.status === 401 && e.code === 'invalid_token');
});

test('after a success with the refreshed token, a later rejection refreshes again', async () => {
  let n = 0;
  const ts = new TokenSource({ tokenProvider: async () => `t${n++}` });
  await ts.get();
  assert.equal(await ts.rejected(rejected(), 't0'), 't1');
  ts.ok();
  assert.equal(await ts.rejected(rejected(), 't1'), 't2');
});

test('no provider, or a provider without a token: an AuthError at once', async () => {
  await assert.rejects(new TokenSource({ token: 'fixed' }).rejected(rejected(), 'fixed'), AuthError);
  const ts = new TokenSource({ tokenProvider: async ({ refresh }) => (refresh ? null : 'old') });
  await ts.get();
  await assert.rejects(ts.rejected(rejected(), 'old'), AuthError);
});

test('closed before it started, a watcher never connects', async () => {
  const { watchTrip, watchStream, connectDriver } = await import('../sdk/index.js');
  let fetched = 0;
  const fetch = async () => { fetched++; throw new Error('no'); };
  const w = watchTrip('t1', { baseURL: 'http://127.0.0.1:9', token: 't', fetch });
  w.close();
  const s = watchStream('/x', { baseURL: 'http://127.0.0.1:9', token: 't', fetch });
  s.close();
  const ch = connectDriver('d1', { baseURL: 'http://127.0.0.1:9', token: 't', mode: 'rest', fetch });
  ch.close();
  // The starts were queued as microtasks: all have run by the next macrotask.
  await new Promise((r) => setImmediate(r));
  assert.equal(fetched, 0);
  assert.equal(w.closed && s.closed && ch.closed, true);
});
