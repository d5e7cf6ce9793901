// The rider page across a restart of `make run`'s server (issue 21): the
// embedded Redis (miniredis inside the process) starts empty, so a trip's
// live state is gone; the archive (SQLite in the data dir) and the dev
// JWT secret (kept in the data dir too) survive, and the trip's reads fall
// back to the archive. The server is started as make run does: no
// HEXTRACK_REDIS_URL, no secret given; restarted as the same instance
// (same port, same data dir).
//
// What the rider sees for a trip under way when its live state was lost
// (decided here): the server serves the trip's last archived snapshot
// marked tracking_lost, without ETA. The page is connected again within
// 10 s without a reload, and shows the trip's last known status (from the
// archive) with a note "Live tracking of this trip was lost when the
// service restarted. Last known status: … (since hh:mm). It won't update
// any more: if your driver doesn't come, request a new trip."; no ETA (a
// countdown to nothing), no driver on the map, no Cancel/Share/chat (the
// server can't act on the trip any more), a "New trip" button; and it
// stops following the trip (no retrying, no polling). A reload shows the
// same. When the archive does not have the trip either (lost before it
// was archived; here its archive file is removed during the restart), the
// feed answers 404 and so does the trip: the page says the same, adding
// that the server no longer knows the trip, with the status it last
// showed, and stops (the SDK's TripGoneError); a reload then returns to
// planning with a notice. A completed trip's page restarted under it
// comes back connected, shows "Completed" from the archive, and stops
// following it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Server, launch, watch, shot, skipReason, until, ping, center } from './harness.mjs';
import { offset } from './geo-node.mjs';

const skip = skipReason();
let browser;

before(async () => { if (!skip) browser = await launch(); });
after(async () => { if (browser) await browser.close(); });

const LIVE = new Set(['live', 'resumed', 'reset']);

// riderTrip opens the rider page, puts a driver near the map centre and
// requests a trip through the UI; it counts the page's API requests.
async function riderTrip(server) {
  const c = await center(server);
  const driverId = `d_rre_${Math.random().toString(16).slice(2, 8)}`;
  const driverTok = await server.token('driver', driverId);
  let seq = Date.now();
  const at = offset(c, 300, 200);
  assert.equal((await ping(server, driverTok, driverId, at, seq++)).status, 200);
  assert.equal((await server.api('PUT', `/v1/drivers/${driverId}/status`, { token: driverTok, body: { status: 'available' } })).status, 200);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const w = watch(page, server);
  const api = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/v1/')) api.push({ t: Date.now(), path: new URL(r.url()).pathname }); });
  await page.goto(server.url + '/');
  await page.waitForSelector('.leaflet-container');
  await page.waitForSelector('body[data-ready]'); // the map's clicks are wired
  await page.mouse.click(450, 400);
  await page.mouse.click(600, 300);
  await until(async () => (await page.textContent('#nearby-text')).includes('nearby;'), { what: 'nearby driver shown' });
  await page.click('#request');
  await page.waitForSelector('#trip:not([hidden])');
  const tripId = (await page.textContent('#trip-id')).trim();
  const accept = () => until(async () => {
    const r = await server.api('POST', `/v1/trips/${tripId}/accept`, { token: driverTok });
    return r.status === 403 ? null : r;
  }, { what: 'offer, then accept' });
  return { ctx, page, w, api, tripId, driverId, driverTok, at, accept, next: () => seq++ };
}

const status = (page) => page.getAttribute('#trip-status', 'data-status');
const connState = (page) => page.getAttribute('#conn', 'data-state');
const eta = (page) => page.evaluate(() => ({ text: document.querySelector('#eta').textContent.trim(), stale: document.querySelector('#eta').dataset.stale }));

// restart stops the server, waits until the page says it is reconnecting,
// starts it again (embedded Redis: empty) and returns when it is up.
async function restart(server, page, { dropArchive = false } = {}) {
  await server.stop();
  if (dropArchive) {
    for (const f of ['archive.db', 'archive.db-wal', 'archive.db-shm']) rmSync(path.join(server.dataDir, f), { force: true });
  }
  await until(async () => (await connState(page)) === 'reconnecting', { what: 'reconnecting shown' });
  // A real restart takes a moment; the page's backoff grows meanwhile.
  await new Promise((r) => setTimeout(r, 2000));
  await server.start();
  return Date.now();
}

// quiet asserts that the page makes no API request and keeps its badge
// for ms: it follows nothing and retries nothing.
async function quiet(s, ms) {
  const from = Date.now();
  await new Promise((r) => setTimeout(r, ms));
  const made = s.api.filter((x) => x.t >= from).map((x) => x.path);
  assert.deepEqual(made, [], `API requests while there is nothing to follow (${ms} ms)`);
  const state = await connState(s.page);
  assert.ok(LIVE.has(state), `badge ${state} after ${ms} ms with nothing to follow`);
}

// pageState sums up the page for a failure message.
const pageState = (page) => page.evaluate(() => ['#conn', '#trip-status', '#lost', '#notices', '#plan']
  .map((q) => { const e = document.querySelector(q); return `${q}${e.hidden ? '(hidden)' : ''}: ${e.textContent.replace(/\s+/g, ' ').trim()}`; }).join(' | '));

const feedStopped = (page) => page.evaluate(() => !!window.hextrack.state.feed && window.hextrack.state.feed.closed);

const CASES = [
  { stage: 'requested', archived: true },
  { stage: 'driver_assigned', archived: true },
  { stage: 'driver_assigned', archived: false },
];

for (const { stage, archived } of CASES) test(`make run restarts (embedded Redis) with a ${stage} trip open${archived ? '' : ', not in the archive either'}: connected again within 10 s, its last known status${archived ? ' from the archive' : ''}, tracking lost said, no ETA, no retrying`, { skip, timeout: 120000 }, async () => {
  const server = await new Server({ secret: null }).start();
  try {
    const s = await riderTrip(server);
    if (stage === 'driver_assigned') {
      assert.equal((await s.accept()).status, 200);
      await until(async () => (await status(s.page)) === 'driver_assigned', { what: 'driver_assigned' });
      // A fix after the assignment brings an ETA to the pickup.
      await ping(server, s.driverTok, s.driverId, offset(s.at, 20, 0), s.next(), 0);
      await until(async () => /Driver arrives in/.test((await eta(s.page)).text), { what: 'an ETA counting down' });
    } else {
      await until(async () => (await status(s.page)) === 'requested', { what: 'requested' });
    }
    const token = await s.page.evaluate(() => localStorage.getItem('hextrack.token.rider'));
    await s.page.evaluate(() => { window.__marker = 'same document'; });
    const t0 = await restart(server, s.page, { dropArchive: !archived });
    await until(async () => LIVE.has(await connState(s.page)), { timeout: 10000, interval: 100, what: 'connected again within 10 s' });
    console.log(`# connected again ${Date.now() - t0} ms after the server's return`);
    await until(async () => !(await s.page.$eval('#lost', (e) => e.hidden)), { what: 'tracking lost said' })
      .catch(async (e) => { throw new Error(`${e.message}; page: ${await pageState(s.page)}`); });
    assert.equal(await status(s.page), stage, 'the last known status');
    const note = await s.page.textContent('#lost');
    const shown = (await s.page.textContent('#trip-status')).trim();
    assert.match(note, /Live tracking of this trip was lost when the service restarted/);
    if (!archived) assert.match(note, /the server no longer knows it/);
    assert.ok(note.includes(`Last known status: ${shown}`), note);
    assert.match(note, /request a new trip/);
    assert.deepEqual(await eta(s.page), { text: '', stale: undefined }, 'no ETA for a trip no longer live');
    assert.equal(await s.page.evaluate(() => window.hextrack.state.car), null, 'no driver drawn at a stale position');
    assert.ok(await s.page.isHidden('#cancel'), 'no Cancel: the server can no longer act on the trip');
    assert.ok(await s.page.isHidden('#share'));
    assert.ok(await s.page.isHidden('#chat-form'));
    assert.ok(await s.page.isVisible('#new-trip'));
    assert.equal(await s.page.evaluate(() => window.__marker), 'same document', 'no reload');
    assert.equal(await s.page.evaluate(() => localStorage.getItem('hextrack.token.rider')), token, 'the token issued before the restart still works (dev secret kept)');
    // The page stopped following the trip: nothing retries, nothing polls,
    // the badge stays connected.
    await until(() => feedStopped(s.page), { what: 'the feed stopped' });
    await quiet(s, 5000);
    await shot(s.page, `rider-tracking-lost-${stage}${archived ? '' : '-unknown'}`);
    s.w.allow.push(/net::ERR_/);
    if (!archived) {
      // Unknown to the server: the feed's 404s, and a reload's, are the
      // answer; the reload goes back to planning with a notice.
      s.w.allow.push(/^HTTP 404 GET \/v1\/trips\//);
      await s.page.reload();
      await s.page.waitForSelector('#plan:not([hidden])');
      await until(async () => /is not available/.test(await s.page.textContent('#notices')), { what: 'the notice' });
      assert.equal(await s.page.evaluate(() => localStorage.getItem('hextrack.rider.trip')), null);
      assert.deepEqual(s.w.problems(), []);
      await s.ctx.close();
      return;
    }
    // A reload shows the same, without opening a stream.
    await s.page.reload();
    await until(async () => !(await s.page.$eval('#lost', (e) => e.hidden)), { timeout: 30000, what: 'tracking lost said after a reload' })
      .catch(async (e) => { throw new Error(`${e.message}; page: ${await pageState(s.page)}`); });
    assert.equal(await status(s.page), stage);
    assert.ok(LIVE.has(await connState(s.page)));
    const reloaded = Date.now() - 3000;
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(s.api.filter((x) => x.t >= reloaded && x.path.endsWith('/events')), [], 'no stream opened for a trip no longer live');
    // "New trip" starts over.
    await s.page.click('#new-trip');
    await s.page.waitForSelector('#plan:not([hidden])');
    assert.ok(await s.page.isHidden('#lost'));
    assert.deepEqual(s.w.problems(), []);
    await s.ctx.close();
  } finally {
    await server.stop();
  }
});

test('make run restarts (embedded Redis) just after a trip completed: connected again, "Completed" from the archive, nothing retries', { skip, timeout: 120000 }, async () => {
  const server = await new Server({ secret: null }).start();
  try {
    const s = await riderTrip(server);
    assert.equal((await s.accept()).status, 200);
    for (const a of ['arrived', 'pickup', 'complete']) {
      const r = await server.api('POST', `/v1/trips/${s.tripId}/${a}`, { token: s.driverTok });
      assert.equal(r.status, 200, `${a}: ${JSON.stringify(r.body)}`);
    }
    await until(async () => (await status(s.page)) === 'completed', { what: 'completed' });
    await s.page.evaluate(() => { window.__marker = 'same document'; });
    // Down before the page stopped following the trip (5 s after the end):
    // it reconnects, and stops once connected again.
    const t0 = await restart(server, s.page);
    await until(async () => LIVE.has(await connState(s.page)), { timeout: 10000, interval: 100, what: 'connected again within 10 s' });
    console.log(`# connected again ${Date.now() - t0} ms after the server's return`);
    await until(() => feedStopped(s.page), { what: 'the feed stopped' });
    assert.equal(await status(s.page), 'completed');
    assert.ok(await s.page.isHidden('#lost'), 'an ended trip lost nothing');
    assert.deepEqual(await eta(s.page), { text: '', stale: undefined });
    assert.ok(await s.page.isVisible('#new-trip'));
    assert.equal(await s.page.evaluate(() => window.__marker), 'same document', 'no reload');
    await quiet(s, 5000);
    // A reload reads it from the archive: completed, its timeline whole.
    await s.page.reload();
    await until(async () => (await status(s.page)) === 'completed', { what: 'completed after a reload' });
    const timeline = await s.page.$$eval('#timeline li', (li) => li.map((x) => x.dataset.status));
    assert.equal(timeline[timeline.length - 1], 'completed');
    assert.ok(await s.page.isHidden('#lost'));
    await shot(s.page, 'rider-completed-after-restart');
    s.w.allow.push(/net::ERR_/);
    assert.deepEqual(s.w.problems(), []);
    await s.ctx.close();
  } finally {
    await server.stop();
  }
});
