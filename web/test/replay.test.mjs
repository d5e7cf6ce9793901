// Trip replay on the ops page (issue 21): a trip driven to the end (the
// driver pings along a route, accepts, arrives, picks up, completes) is
// found among the past trips and replayed: its trail drawn with every
// breadcrumb, the slider moving the driver to the fix at a time (by mouse
// value and by keyboard), the trip's events on the timeline in order, a
// click on one moving the slider there; play and pause; no serious axe
// violation, on desktop and on a phone (no sideways scrolling). A trip
// still going on replays up to its latest fix. Then the server restarts
// with a fresh embedded Redis on the same data dir, and the replay works
// from the archive alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, watch, shot, skipReason, until, ping, pingOK } from './harness.mjs';
import { audit } from './axe.mjs';
import { offset } from './geo-node.mjs';

const skip = skipReason();
const DESKTOP = { viewport: { width: 1280, height: 800 } };
// Central Porto, on its roads.
const C = { lat: 41.1496, lng: -8.6109 };
const run = Date.now().toString(36);
let server;
let browser;

before(async () => {
  if (skip) return;
  server = await new Server({ env: { HEXTRACK_MAP: 'testdata/porto.osm.pbf' } }).start();
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// ms of an RFC 3339 time, nanoseconds cut (as the page reads them).
const ms = (ts) => Date.parse(ts.replace(/(\.\d{3})\d+/, '$1'));

function distanceM(a, b) {
  const r = Math.PI / 180;
  const x = (b.lng - a.lng) * r * Math.cos(((a.lat + b.lat) / 2) * r);
  const y = (b.lat - a.lat) * r;
  return Math.hypot(x, y) * 6371000;
}

// completeTrip drives one trip to the end over the API: a driver near C
// accepts a rider's trip, then pings every 250 ms, 30 m apart (each fix a
// breadcrumb: the server keeps one every 25 m), arriving, picking up and
// completing between them (with finish false it stays in progress).
// Returns {id, driverId, riderId, fixes}.
async function completeTrip(tag, finish = true) {
  const driverId = `d_rp_${run}_${tag}`;
  const riderId = `r_rp_${run}_${tag}`;
  const dtok = await server.token('driver', driverId);
  const rtok = await server.token('rider', riderId);
  let seq = Date.now();
  let p = offset(C, 250, 200);
  await pingOK(server, dtok, driverId, p, seq++);
  assert.equal((await server.api('PUT', `/v1/drivers/${driverId}/status`, { token: dtok, body: { status: 'available' } })).status, 200);
  const r = await server.api('POST', '/v1/trips', {
    token: rtok, headers: { 'Idempotency-Key': `rp-${run}-${tag}` },
    body: { kind: 'ride', pickup: offset(C, 80, 30), dropoff: offset(C, 600, 30), payment: 'cash' },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const id = r.body.trip.id;
  // Only the driver offered the trip may accept it; the offer can come
  // after the request returns.
  const acc = await until(async () => {
    const a = await server.api('POST', `/v1/trips/${id}/accept`, { token: dtok });
    return a.status === 403 ? null : a;
  }, { what: 'offer, then accept', interval: 400, timeout: 30000 });
  assert.equal(acc.status, 200, JSON.stringify(acc.body));
  let fixes = 0;
  const drive = async (n) => {
    for (let i = 0; i < n; i++) {
      p = offset(p, 30, 30);
      await pingOK(server, dtok, driverId, p, seq++, 30);
      fixes++;
      await sleep(250);
    }
  };
  const act = async (a) => assert.equal((await server.api('POST', `/v1/trips/${id}/${a}`, { token: dtok })).status, 200, a);
  await drive(4);
  await act('arrived');
  await drive(2);
  await act('pickup');
  await drive(5);
  if (!finish) return { id, driverId, riderId, fixes };
  await act('complete');
  // A fix after the end is not part of the trip.
  await ping(server, dtok, driverId, offset(p, 30, 30), seq++, 30);
  // Off duty: the next trip's dispatch offers it to its own driver.
  assert.equal((await server.api('PUT', `/v1/drivers/${driverId}/status`, { token: dtok, body: { status: 'offline' } })).status, 200);
  return { id, driverId, riderId, fixes };
}

// expected reads the trip's path and events as the server serves them.
async function expected(id) {
  const ops = await server.token('ops', `ops_rp_${run}`);
  const path = await server.api('GET', `/v1/trips/${id}/path`, { token: ops });
  assert.equal(path.status, 200, JSON.stringify(path.body));
  const evs = await server.api('GET', `/v1/trips/${id}/events?limit=1000&wait=0`, { token: ops });
  assert.equal(evs.status, 200, JSON.stringify(evs.body));
  return { points: path.body.points.map((x) => ({ ...x, t: ms(x.ts) })), events: evs.body.events };
}

// archived waits until the archive lists the trip as completed.
async function archived(id, riderId) {
  const ops = await server.token('ops', `ops_rp_${run}`);
  await until(async () => {
    const r = await server.api('GET', `/v1/trips?rider=${riderId}`, { token: ops });
    return r.status === 200 && r.body.trips.some((t) => t.id === id && t.status === 'completed');
  }, { what: `trip ${id} completed in the archive` });
}

const replayState = (page) => page.evaluate(() => {
  const r = window.hextrack.state.replay;
  const m = r.marker.getLatLng();
  return {
    trail: r.line.getLatLngs().length, marker: { lat: m.lat, lng: m.lng },
    value: Number(document.querySelector('#rp-slider').value), start: Number(document.querySelector('#rp-slider').dataset.start),
  };
});

// at asserts the replayed driver is at fix f (within ~1 cm).
function at(st, f, what) {
  assert.ok(Math.abs(st.marker.lat - f.lat) < 1e-7 && Math.abs(st.marker.lng - f.lng) < 1e-7,
    `${what}: marker at ${JSON.stringify(st.marker)}, want the fix ${JSON.stringify(f)}`);
}

// checkReplay runs the replay checks on an open replay of trip x.
async function checkReplay(page, x, want) {
  await page.waitForSelector('#replay[data-state="ready"]');
  assert.equal(await page.textContent('#rp-trip'), x.id);
  const pts = want.points;
  let st = await replayState(page);
  assert.equal(st.trail, x.fixes, 'every fix of the trip is a breadcrumb of the trail');
  assert.equal(st.trail, pts.length, 'the trail drawn is the path served');
  assert.equal(await page.getAttribute('#replay', 'data-points'), String(pts.length));

  // The slider to a fix's time: the driver is at that fix.
  for (const i of [0, 3, 7, pts.length - 1]) {
    await page.fill('#rp-slider', String(pts[i].t - st.start));
    st = await replayState(page);
    at(st, pts[i], `slider at fix ${i}`);
  }
  // Halfway between two fixes: halfway along the segment between them.
  const [a, b] = [pts[5], pts[6]];
  await page.fill('#rp-slider', String(Math.round((a.t + b.t) / 2) - st.start));
  st = await replayState(page);
  const d = distanceM(a, b);
  assert.ok(Math.abs(distanceM(a, st.marker) - d / 2) < 1 && Math.abs(distanceM(st.marker, b) - d / 2) < 1,
    `halfway: ${distanceM(a, st.marker).toFixed(1)} m and ${distanceM(st.marker, b).toFixed(1)} m of ${d.toFixed(1)} m`);

  // By keyboard: End is the last fix, Home the start (before the first
  // fix, the driver waits at it), an arrow one second on.
  await page.focus('#rp-slider');
  await page.keyboard.press('End');
  st = await replayState(page);
  at(st, pts[pts.length - 1], 'End');
  await page.keyboard.press('Home');
  st = await replayState(page);
  assert.equal(st.value, 0);
  at(st, pts[0], 'Home');
  await page.keyboard.press('ArrowRight');
  assert.equal((await replayState(page)).value, 1000);
  assert.match(await page.getAttribute('#rp-slider', 'aria-valuetext'), /^0:01 of 0:\d\d · /);

  // The events on the timeline: the trip's, in order.
  const items = await page.$$eval('#rp-events li', (li) => li.map((x) => ({ id: x.dataset.id, type: x.dataset.type })));
  assert.deepEqual(items, want.events.map((e) => ({ id: e.id, type: e.type })));
  const flow = want.events.filter((e) => ['trip.created', 'trip.assigned', 'trip.status'].includes(e.type)).map((e) => e.data.status);
  assert.deepEqual(flow, ['requested', 'driver_assigned', 'driver_arrived', 'in_progress', 'completed']);
  assert.equal(await page.$$eval('#rp-ticks .rp-tick', (t) => t.length), want.events.length);

  // A click on an event moves the slider (and the driver) to its time, and
  // marks it current; the slider passing the next event marks that one.
  const k = want.events.findIndex((e) => e.data.status === 'in_progress');
  const ev = want.events[k];
  await page.click(`#rp-events li:nth-child(${k + 1}) button`);
  st = await replayState(page);
  assert.equal(st.value, ms(ev.ts) - st.start, 'slider at the event');
  assert.equal(await page.getAttribute(`#rp-events li:nth-child(${k + 1}) button`, 'aria-current'), 'step');
  assert.equal(await page.$$eval('#rp-events li.current', (l) => l.length), 1);
  const before = pts.filter((p) => p.t <= ms(ev.ts)).at(-1);
  const after = pts.find((p) => p.t > ms(ev.ts));
  const seg = distanceM(before, after);
  assert.ok(distanceM(before, st.marker) <= seg + 0.5 && distanceM(st.marker, after) <= seg + 0.5,
    `at the event the driver is between the fixes around it: ${JSON.stringify(st.marker)}`);
  const next = want.events[k + 1];
  await page.fill('#rp-slider', String(ms(next.ts) - st.start));
  assert.equal(await page.getAttribute(`#rp-events li:nth-child(${k + 2}) button`, 'aria-current'), 'step');
  assert.equal(await page.getAttribute(`#rp-events li:nth-child(${k + 1}) button`, 'aria-current'), null);

  // Play moves time on, Pause stops it.
  await page.keyboard.press('Home');
  await page.selectOption('#rp-speed', '2');
  await page.click('#rp-play');
  assert.equal(await page.textContent('#rp-play'), 'Pause');
  await until(async () => (await replayState(page)).value > 500, { what: 'time moving while playing' });
  await page.click('#rp-play');
  assert.equal(await page.textContent('#rp-play'), 'Play');
  const paused = (await replayState(page)).value;
  await sleep(300);
  assert.equal((await replayState(page)).value, paused, 'paused');
}

test('ops: a completed trip found among past trips and replayed', { skip, timeout: 150000 }, async () => {
  const x = await completeTrip('a');
  await archived(x.id, x.riderId);
  const want = await expected(x.id);
  const ctx = await browser.newContext(DESKTOP);
  const page = await ctx.newPage();
  const w = watch(page, server);
  try {
    await page.goto(`${server.url}/ops`);
    await page.waitForSelector('.leaflet-container[data-map-source="osm"]');
    // The past trips list: newest first, filtered by rider.
    await page.waitForSelector('#history tr[data-trip]');
    await page.fill('#h-rider', x.riderId);
    await page.click('#h-search');
    await until(async () => (await page.$$eval('#history tr', (r) => r.map((t) => t.dataset.trip))).join() === x.id, { what: 'the rider\'s trip listed' });
    assert.equal(await page.getAttribute(`#history tr[data-trip="${x.id}"]`, 'data-status'), 'completed');
    // Keyboard: the Replay button, Enter; focus moves to the replay.
    await page.focus(`button[aria-label="Replay trip ${x.id}"]`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#replay:not([hidden])');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'replay-title');
    await checkReplay(page, x, want);

    // The view for people: a point in the trip's middle, the current event
    // highlighted; no serious axe violation.
    await page.click(`#rp-events li:nth-child(${want.events.findIndex((e) => e.data.status === 'in_progress') + 1}) button`);
    assert.deepEqual(await audit(page), [], 'replay view');
    // test-artifacts/screenshots/ops-replay.png (docs/screenshots has a copy).
    await shot(page, 'ops-replay');

    // Close: the replay's layer goes, focus returns to the button.
    await page.click('#rp-close');
    assert.equal(await page.isHidden('#replay'), true);
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), `Replay trip ${x.id}`);
    assert.equal(await page.evaluate(() => window.hextrack.map.hasLayer(window.hextrack.state.replay.layer)), false);
    // Each move of the view re-subscribes the viewport stream: the browser
    // reports the closed one as aborted.
    w.allow.push(/GET \/v1\/ops\/drivers\/stream: net::ERR_ABORTED/);
    assert.deepEqual(w.external, []);
    assert.deepEqual(w.problems(), []);
  } finally {
    await ctx.close();
  }

  // On a phone: the replay under the map, the page not scrolling sideways.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    const pg = await phone.newPage();
    await pg.goto(`${server.url}/ops`);
    await pg.waitForSelector('.leaflet-container[data-map-source="osm"]');
    await pg.fill('#open-id', x.id);
    await pg.click('#open-form button[type="submit"]');
    await pg.waitForSelector('#replay[data-state="ready"]');
    await pg.click(`#rp-events li:nth-child(${want.events.findIndex((e) => e.data.status === 'in_progress') + 1}) button`);
    assert.deepEqual(await pg.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]), [390, 390], 'no sideways scrolling');
    assert.deepEqual(await audit(pg), [], 'replay view on a phone');
    await shot(pg, 'ops-replay-phone');
  } finally {
    await phone.close();
  }
});

test('ops: a trip still going on replays up to now, from Redis', { skip, timeout: 120000 }, async () => {
  const x = await completeTrip('live', false);
  const want = await expected(x.id);
  assert.equal(want.points.length, x.fixes);
  const ctx = await browser.newContext(DESKTOP);
  const page = await ctx.newPage();
  const w = watch(page, server);
  try {
    await page.goto(`${server.url}/ops`);
    await page.waitForSelector('.leaflet-container[data-map-source="osm"]');
    await page.fill('#open-id', x.id);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#replay[data-state="ready"]');
    assert.equal((await replayState(page)).trail, x.fixes);
    assert.equal(await page.getAttribute('#rp-status', 'data-status'), 'in_progress');
    assert.match(await page.textContent('#rp-note'), /still going on/);
    const items = await page.$$eval('#rp-events li', (li) => li.map((e) => e.dataset.id));
    assert.deepEqual(items, want.events.map((e) => e.id));
    await page.focus('#rp-slider');
    await page.keyboard.press('End');
    at(await replayState(page), want.points.at(-1), 'End of a live trip: its latest fix');
    w.allow.push(/GET \/v1\/ops\/drivers\/stream: net::ERR_ABORTED/);
    assert.deepEqual(w.problems(), []);
  } finally {
    await ctx.close();
  }
});

test('ops: after a restart with a fresh Redis the replay comes from the archive', { skip, timeout: 150000 }, async () => {
  const x = await completeTrip('b');
  await archived(x.id, x.riderId);
  const want = await expected(x.id);
  // Same data dir (the SQLite archive), a new process: a new, empty
  // embedded Redis. Nothing of the trip is left but the archive.
  await server.stop();
  await server.start();
  // The archive keeps times to the microsecond.
  const again = await expected(x.id);
  const same = (e) => ({ id: e.id, type: e.type, data: e.data, t: ms(e.ts) });
  assert.deepEqual(again.points, want.points, 'the archive serves the same trail');
  assert.deepEqual(again.events.map(same), want.events.map(same), 'the archive serves the same events');
  const ctx = await browser.newContext(DESKTOP);
  const page = await ctx.newPage();
  const w = watch(page, server);
  try {
    await page.goto(`${server.url}/ops`);
    await page.waitForSelector('.leaflet-container[data-map-source="osm"]');
    // The live trips table knows nothing of it (Redis is empty) …
    await page.waitForSelector('#history tr[data-trip]');
    assert.equal(await page.$(`#trips tr[data-trip="${x.id}"]`), null);
    // … the archive's list does; open it by its ID, as from a ticket.
    assert.ok(await page.$(`#history tr[data-trip="${x.id}"]`), 'listed among past trips');
    await page.fill('#open-id', x.id);
    await page.keyboard.press('Enter');
    await checkReplay(page, x, want);
    w.allow.push(/GET \/v1\/ops\/drivers\/stream: net::ERR_ABORTED/);
    assert.deepEqual(w.external, []);
    assert.deepEqual(w.problems(), []);
  } finally {
    await ctx.close();
  }
});

test('ops: past trips come a page at a time, newest first', { skip, timeout: 90000 }, async () => {
  // 22 trips of one rider: a page of 20, then the 2 oldest.
  const riderId = `r_rp_${run}_pages`;
  const rtok = await server.token('rider', riderId);
  const made = [];
  for (let i = 0; i < 22; i++) {
    const r = await server.api('POST', '/v1/trips', {
      token: rtok, headers: { 'Idempotency-Key': `rp-${run}-page-${i}` },
      body: { kind: 'ride', pickup: offset(C, 50 * i, 90), dropoff: offset(C, 800, 0), payment: 'cash' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    made.push(r.body.trip.id);
  }
  const ops = await server.token('ops', `ops_rp_${run}`);
  await until(async () => {
    const r = await server.api('GET', `/v1/trips?rider=${riderId}&limit=100`, { token: ops });
    return r.status === 200 && r.body.trips.length === 22;
  }, { what: 'the 22 trips archived' });
  const api = (await server.api('GET', `/v1/trips?rider=${riderId}&limit=100`, { token: ops })).body.trips.map((t) => t.id);
  assert.deepEqual([...api].sort(), [...made].sort());
  const ctx = await browser.newContext(DESKTOP);
  const page = await ctx.newPage();
  const w = watch(page, server);
  try {
    await page.goto(`${server.url}/ops`);
    await page.waitForSelector('.leaflet-container[data-map-source="osm"]');
    await page.fill('#h-rider', riderId);
    await page.click('#h-search');
    const rows = () => page.$$eval('#history tr', (r) => r.map((t) => t.dataset.trip));
    await until(async () => (await rows()).length === 20, { what: 'the first page' });
    assert.deepEqual(await rows(), api.slice(0, 20), 'newest first, as the API lists them');
    assert.equal(await page.isVisible('#h-more'), true);
    await page.click('#h-more');
    await until(async () => (await rows()).length === 22, { what: 'the older trips' });
    assert.deepEqual(await rows(), api);
    assert.equal(await page.isVisible('#h-more'), false, 'no more pages');
    assert.match(await page.textContent('#history-caption'), /^22 trips from the archive, newest first$/);
    // A filter that matches none says so.
    await page.selectOption('#h-status', 'completed');
    await page.click('#h-search');
    await until(async () => (await page.textContent('#history-caption')) === 'No trips match.', { what: 'no match' });
    assert.deepEqual(await rows(), []);
    w.allow.push(/GET \/v1\/ops\/drivers\/stream: net::ERR_ABORTED/);
    assert.deepEqual(w.problems(), []);
  } finally {
    await ctx.close();
  }
});
