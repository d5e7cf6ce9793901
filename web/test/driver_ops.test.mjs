// The driver page receives an offer over its channel (WebSocket, or REST
// long-poll when WS is unavailable) and accepts it; the ops page shows the
// drivers in view and the live counters.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, watch, shot, skipReason, until, ping, center } from './harness.mjs';
import { offset } from './geo-node.mjs';

const skip = skipReason();
let browser;
let server;

before(async () => {
  if (skip) return;
  browser = await launch();
  server = await new Server().start();
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('driver page signs in, shares a simulated location and shows up nearby', { skip, timeout: 60000 }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await ctx.addInitScript(() => localStorage.setItem('hextrack.driver.channel', 'rest'));
  const page = await ctx.newPage();
  const w = watch(page, server);
  try {
    await page.goto(server.url + '/driver');
    await page.fill('#driver-id', 'd_page_1');
    await page.click('#signin-dev');
    await page.waitForSelector('#console:not([hidden])');
    await page.click('#go-online');
    await until(async () => (await page.textContent('#status')) === 'available', { what: 'status available' });
    const ops = await server.token('ops', 'ops_t');
    const st = await until(async () => {
      const r = await server.api('GET', '/v1/drivers/d_page_1', { token: ops });
      return r.status === 200 && r.body && r.body.location ? r.body.location : null;
    }, { what: 'pings applied on the server' });
    const first = { lat: st.lat, lng: st.lng };
    // The simulated drive moves the car.
    await until(async () => {
      const r = await server.api('GET', '/v1/drivers/d_page_1', { token: ops });
      const l = r.body && r.body.location;
      return l && (l.lat !== first.lat || l.lng !== first.lng);
    }, { what: 'simulated drive moving', timeout: 20000 });
    const rider = await server.token('rider', 'r_near');
    const near = await server.api('GET', `/v1/drivers/nearby?lat=${st.lat}&lng=${st.lng}&radius_m=2000`, { token: rider });
    assert.ok(near.body.drivers.some((d) => d.id === 'd_page_1'), JSON.stringify(near.body));
    await shot(page, 'driver-online');
    // Pings use the REST channel; commands may not exist yet, which the
    // page states instead of failing.
    const errs = w.problems().filter((e) => !/\/v1\/map\/roads\.geojson|\/commands/.test(e));
    assert.deepEqual(errs, []);
    assert.deepEqual(w.external, []);
  } finally {
    await page.click('#go-offline').catch(() => {});
    await ctx.close();
  }
});

test('driver page receives an offer and accepts it', { skip, timeout: 90000 }, async () => {
  const c = await center(server);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const w = watch(page, server);
  try {
    await page.goto(server.url + '/driver');
    await page.fill('#driver-id', 'd_offer_1');
    await page.click('#signin-dev');
    await page.waitForSelector('#console:not([hidden])');
    await page.click('#go-online');
    await until(async () => (await page.textContent('#status')) === 'available', { what: 'status available' });
    const ops = await server.token('ops', 'ops_t');
    const st = await until(async () => {
      const r = await server.api('GET', '/v1/drivers/d_offer_1', { token: ops });
      return r.status === 200 && r.body && r.body.location ? r.body.location : null;
    }, { what: 'driver located' });
    const rider = await server.token('rider', 'r_offer');
    const pickup = offset({ lat: st.lat, lng: st.lng }, 150, 0);
    const trip = await server.api('POST', '/v1/trips', {
      token: rider, headers: { 'Idempotency-Key': `k-${Date.now()}` },
      body: { kind: 'ride', pickup, dropoff: offset(pickup, 1200, 90), payment: 'cash' },
    });
    assert.equal(trip.status, 201, JSON.stringify(trip.body));
    await page.waitForSelector('#offer:not([hidden])', { timeout: 30000 });
    assert.equal((await page.textContent('#offer-trip')).split(' ')[0], trip.body.trip.id);
    await shot(page, 'driver-offer');
    await page.click('#accept');
    await page.waitForSelector('#trip:not([hidden])');
    await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'driver_assigned', { what: 'assigned on the driver page' });
    assert.equal(await page.textContent('#status'), 'on_trip');
    const snap = await server.api('GET', `/v1/trips/${trip.body.trip.id}`, { token: rider });
    assert.equal(snap.body.trip.driver_id, 'd_offer_1');
    await page.click('#arrived');
    await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'driver_arrived', { what: 'arrived' });
    await shot(page, 'driver-trip');
    assert.deepEqual(w.problems(), []);
    assert.deepEqual(w.external, []);
  } finally {
    await page.click('#go-offline').catch(() => {});
    await ctx.close();
  }
});

test('ops page shows the drivers in view and live counters', { skip, timeout: 60000 }, async () => {
  const c = await center(server);
  for (let i = 0; i < 3; i++) {
    const id = `d_ops_${i}`;
    const tok = await server.token('driver', id);
    assert.equal((await ping(server, tok, id, offset(c, 200 + 150 * i, 45 * i), Date.now())).status, 200);
    await server.api('PUT', `/v1/drivers/${id}/status`, { token: tok, body: { status: 'available' } });
  }
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const w = watch(page, server);
  try {
    await page.goto(server.url + '/ops');
    await page.waitForSelector('.leaflet-container');
    await page.evaluate(({ lat, lng }) => window.hextrack.state && lat && lng, c);
    await until(async () => Number(await page.textContent('#c-inview')) >= 3, { what: 'drivers in view', timeout: 20000 });
    await until(async () => /^\d+$/.test((await page.textContent('#c-online')).trim()), { what: 'online counter', timeout: 20000 });
    await until(async () => (await page.$$('.uplot')).length === 2, { what: 'charts' });
    // A rider's trip shows up in the trips table (live, from the summary
    // stream) and as open demand on the hex layer; ops cancel it there.
    const rider = await server.token('rider', 'r_ops');
    const trip = await server.api('POST', '/v1/trips', {
      token: rider, headers: { 'Idempotency-Key': `ops-${Date.now()}` },
      body: { kind: 'ride', pickup: offset(c, 300, 120), dropoff: offset(c, 1500, 200), payment: 'cash' },
    });
    assert.equal(trip.status, 201, JSON.stringify(trip.body));
    const id = trip.body.trip.id;
    const row = `#trips tr[data-trip="${id}"]`;
    await until(async () => (await page.getAttribute(row, 'data-status')) === 'requested', { what: 'trip row requested', timeout: 10000 });
    // The map draws on a canvas: count the hex layer's polygons instead.
    await until(async () => page.evaluate(() => window.hextrack.state.hex.getLayers().length >= 1), { what: 'hex layer', timeout: 12000 });
    await page.waitForTimeout(1500);
    await shot(page, 'ops-live');
    await page.click(`button[aria-label="Cancel trip ${id}"]`);
    await page.click('dialog.confirm button.danger'); // the confirmation
    await until(async () => (await page.getAttribute(row, 'data-status')) === 'cancelled', { what: 'trip row cancelled' });
    const snap = await server.api('GET', `/v1/trips/${id}`, { token: rider });
    assert.equal(snap.body.trip.status, 'cancelled');
    assert.equal(snap.body.trip.cancelled_by, 'ops');
    await page.$eval('#trips', (e) => e.closest('.card').scrollIntoView());
    await shot(page, 'ops-trips');
    assert.deepEqual(w.problems(), []);
    assert.deepEqual(w.external, []);
  } finally {
    await ctx.close();
  }
});
