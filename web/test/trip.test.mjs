// The rider's journey in a real browser: request a trip, a simulated
// driver (this test, over REST) accepts and drives, the page shows the
// driver moving and the status changing, cancel works; then the server
// restarts mid-trip and the page resumes without a reload and without
// missing a status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, watch, shot, skipReason, until, ping, center } from './harness.mjs';
import { offset } from './geo-node.mjs';

const skip = skipReason();
let browser;

before(async () => { if (!skip) browser = await launch(); });
after(async () => { if (browser) await browser.close(); });

// setupTrip opens the rider page, puts a driver nearby, and requests a
// trip through the UI. Returns {page, w, ctx, tripId, driverTok, driverId, c}.
// accept accepts the trip as the test's driver once dispatch has offered
// it to them: until the offer is made only the offered driver may accept
// (403), and on a loaded machine the offer can come after the request
// returns. Any other refusal is returned at once, for the caller to assert.
async function accept(server, s) {
  return until(async () => {
    const r = await server.api('POST', `/v1/trips/${s.tripId}/accept`, { token: s.driverTok });
    return r.status === 403 ? null : r;
  }, { what: `the offer of ${s.tripId} to ${s.driverId}, then accept` });
}

async function setupTrip(server, transport = 'sse') {
  const c = await center(server);
  const driverId = `d_bt_${Math.random().toString(16).slice(2, 8)}`;
  const driverTok = await server.token('driver', driverId);
  let seq = Date.now();
  const r = await ping(server, driverTok, driverId, offset(c, 300, 200), seq++);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await server.api('PUT', `/v1/drivers/${driverId}/status`, { token: driverTok, body: { status: 'available' } })).status, 200);

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await ctx.addInitScript((t) => localStorage.setItem('hextrack.transport', t), transport);
  const page = await ctx.newPage();
  const w = watch(page, server);
  await page.goto(server.url + '/');
  await page.waitForSelector('.leaflet-container');
  await page.evaluate(({ lat, lng }) => window.hextrack.state && true, c);
  // Centre the map on the test area and set pickup/dropoff by keyboard-
  // accessible buttons (map centre), like a keyboard user would.
  await page.evaluate(({ lat, lng }) => {
    const m = document.querySelector('#map');
    m.dispatchEvent(new CustomEvent('noop'));
    return [lat, lng];
  }, c);
  await page.waitForSelector('body[data-ready]'); // the map's clicks are wired
  await page.mouse.click(450, 400);
  await page.mouse.click(600, 300);
  await until(async () => (await page.textContent('#nearby-text')).includes('nearby;'), { what: 'nearby driver shown' });
  await page.click('#request');
  await page.waitForSelector('#trip:not([hidden])');
  const tripId = (await page.textContent('#trip-id')).trim();
  assert.match(tripId, /\S+/);
  return { page, w, ctx, tripId, driverTok, driverId, c, seq };
}

// driveTo sends n pings moving from p east-north-east, one every 400 ms.
async function drive(server, s, n) {
  let p = offset(s.c, 300, 200);
  for (let i = 0; i < n; i++) {
    p = offset(p, 12, 60);
    await ping(server, s.driverTok, s.driverId, p, s.seq++, 60);
    await new Promise((r) => setTimeout(r, 400));
  }
  return p;
}

async function status(page) {
  return page.getAttribute('#trip-status', 'data-status');
}

test('rider requests, driver accepts and moves, rider cancels', { skip, timeout: 90000 }, async () => {
  const server = await new Server().start();
  try {
    const s = await setupTrip(server);
    await shot(s.page, 'rider-requested');
    const acc = await accept(server, s);
    assert.equal(acc.status, 200, JSON.stringify(acc.body));
    await until(async () => (await status(s.page)) === 'driver_assigned', { what: 'driver_assigned on the page' });
    await drive(server, s, 8);
    const moved = await until(() => s.page.evaluate(() => {
      const car = window.hextrack.state.car;
      return car && car.frames > 10 ? { frames: car.frames, pos: car.pos } : null;
    }), { what: 'assigned driver drawn and animated' });
    assert.ok(moved.frames > 10, 'the car is interpolated between fixes');
    const rot = await s.page.evaluate(() => document.querySelector('.vehicle.assigned .vehicle-body').style.transform);
    assert.match(rot, /rotate\(/, 'the car is turned to its heading');
    await shot(s.page, 'rider-driver-assigned');
    assert.equal(await s.page.getAttribute('#conn', 'data-state'), 'live');
    // Cancel asks first (a <dialog>): confirm there.
    await s.page.click('#cancel');
    await s.page.click('dialog.confirm button.danger');
    await until(async () => (await status(s.page)) === 'cancelled', { what: 'cancelled on the page' });
    const timeline = await s.page.$$eval('#timeline li', (li) => li.map((x) => x.dataset.status));
    assert.deepEqual(timeline, ['requested', 'driver_assigned', 'cancelled']);
    await shot(s.page, 'rider-cancelled');
    assert.deepEqual(s.w.external, []);
    assert.deepEqual(s.w.problems(), []);
    await s.ctx.close();
  } finally {
    await server.stop();
  }
});

// The restart needs state that outlives the process: a real Redis with a
// key prefix of its own. CI=true makes a missing Redis a failure.
const redisURL = process.env.HEXTRACK_TEST_REDIS_URL || 'redis://127.0.0.1:6379/0';

for (const transport of ['sse', 'longpoll']) {
  test(`server restarts mid-trip: the page resumes over ${transport} without reload or a missed status`, { skip, timeout: 120000 }, async () => {
    const prefix = `webtest:${transport}:${Date.now()}:`;
    const a = await new Server({ redisURL, prefix }).start();
    let b;
    try {
      const s = await setupTrip(a, transport);
      const acc = await accept(a, s);
      assert.equal(acc.status, 200, JSON.stringify(acc.body));
      await until(async () => (await status(s.page)) === 'driver_assigned', { what: 'driver_assigned' });
      await s.page.evaluate(() => { window.__marker = 'same document'; });
      await a.stop();
      await until(async () => (await s.page.getAttribute('#conn', 'data-state')) === 'reconnecting', { what: 'reconnecting shown' });
      await shot(s.page, `rider-reconnecting-${transport}`);
      b = await new Server({ redisURL, prefix, port: a.port }).start();
      // A status change the page is not connected for: it must be replayed.
      const arr = await b.api('POST', `/v1/trips/${s.tripId}/arrived`, { token: s.driverTok });
      assert.equal(arr.status, 200, JSON.stringify(arr.body));
      await until(async () => (await status(s.page)) === 'driver_arrived', { timeout: 30000, what: 'driver_arrived after restart' });
      const st = await until(async () => {
        const x = await s.page.getAttribute('#conn', 'data-resumes');
        return x ? { resumes: x, missed: await s.page.getAttribute('#conn', 'data-missed') } : null;
      }, { what: 'resume reported' });
      assert.ok(Number(st.resumes) >= 1);
      assert.equal(await s.page.evaluate(() => window.__marker), 'same document', 'no reload');
      const timeline = await s.page.$$eval('#timeline li', (li) => li.map((x) => x.dataset.status));
      assert.deepEqual(timeline, ['requested', 'driver_assigned', 'driver_arrived']);
      await shot(s.page, `rider-resumed-${transport}`);
      // Connection errors while the server was down are expected.
      s.w.allow.push(/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET|ERR_INCOMPLETE_CHUNKED|ERR_ABORTED|net::ERR_/);
      assert.deepEqual(s.w.problems(), []);
      await s.ctx.close();
    } finally {
      if (b) await b.stop();
      await a.stop();
    }
  });
}
