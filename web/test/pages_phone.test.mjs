// The rider page on a phone (390×844) on real Porto roads: the page
// scrolls, Request is on screen, and once a trip is requested its status
// and ETA sit in a bottom sheet that stays in view wherever the page is
// scrolled; the route line, street addresses and "driver arriving" show;
// cancel asks first. Then the share-link view: read-only, talking to a
// viewer, not to the rider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, watch, shot, skipReason, until, pingOK } from './harness.mjs';
import { offset } from './geo-node.mjs';

const skip = skipReason();
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
let server;
let browser;

before(async () => {
  if (skip) return;
  // The demo map of `make run`, vendored in testdata/.
  server = await new Server({ env: { HEXTRACK_MAP: 'testdata/porto.osm.pbf' } }).start();
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

// namedRoad returns a point on a named residential street of the map, and
// its name.
async function namedRoad() {
  const r = await server.api('GET', '/v1/map/roads.geojson');
  assert.equal(r.headers.get('x-map-source'), 'osm');
  const named = r.body.features.filter((f) => f.properties.name && f.properties.class === 'residential' && f.geometry.coordinates.length >= 2);
  assert.ok(named.length > 50, `named residential streets: ${named.length}`);
  const f = named[Math.floor(named.length / 2)];
  const [a, b] = f.geometry.coordinates;
  return { p: { lat: (a[1] + b[1]) / 2, lng: (a[0] + b[0]) / 2 }, name: f.properties.name };
}

// onScreen reports whether sel is visible inside the viewport and is the
// element actually drawn at its centre (nothing covers it).
function onScreen(page, sel) {
  return page.evaluate((s) => {
    const e = document.querySelector(s);
    if (!e || !e.offsetParent && getComputedStyle(e).position !== 'fixed') return false;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) return false;
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return !!hit && (hit === e || e.contains(hit));
  }, sel);
}

async function setPoints(page, pickup, dropoff) {
  await page.evaluate((p) => { window.hextrack.map.setView([p.lat, p.lng], 16, { animate: false }); }, pickup);
  await page.click('#set-pickup');
  await page.evaluate((p) => { window.hextrack.map.setView([p.lat, p.lng], 16, { animate: false }); }, dropoff);
  await page.click('#set-dropoff');
}

test('phone: the page scrolls, Request is on screen, status and ETA stay in view', { skip, timeout: 90000 }, async () => {
  const { p: pickup, name } = await namedRoad();
  const dropoff = offset(pickup, 900, 45);
  const driverId = `d_phone_${Date.now().toString(36)}`;
  const driverTok = await server.token('driver', driverId);
  let seq = Date.now();
  await pingOK(server, driverTok, driverId, offset(pickup, 600, 200), seq++);
  const firstFix = Date.now();
  assert.equal((await server.api('PUT', `/v1/drivers/${driverId}/status`, { token: driverTok, body: { status: 'available' } })).status, 200);

  const ctx = await browser.newContext(PHONE);
  const page = await ctx.newPage();
  const w = watch(page, server);
  try {
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready]');
    await page.waitForSelector('.leaflet-container[data-map-source="osm"]');
    assert.match(await page.textContent('.leaflet-control-attribution'), /© OpenStreetMap contributors/);
    // The page is longer than the screen and scrolls (the map does not
    // take the whole screen).
    const dims = await page.evaluate(() => ({ h: document.scrollingElement.scrollHeight, vh: innerHeight, map: document.querySelector('#map').getBoundingClientRect().height }));
    assert.ok(dims.h > dims.vh, `page height ${dims.h} vs screen ${dims.vh}: nothing to scroll`);
    assert.ok(dims.map < dims.vh * 0.6, `map ${dims.map}px tall on a ${dims.vh}px screen`);
    await page.evaluate(() => window.scrollTo(0, 200));
    assert.ok(await page.evaluate(() => window.scrollY) > 0, 'the page scrolls');
    await page.evaluate(() => window.scrollTo(0, 0));

    await setPoints(page, pickup, dropoff);
    // Request is on screen without scrolling, enabled, and nothing covers it.
    assert.ok(await onScreen(page, '#request'), 'Request on screen');
    assert.equal(await page.isDisabled('#request'), false);
    // The pickup is named after the map's streets.
    const addr = await page.getAttribute('#pickup-text', 'data-address');
    assert.ok(addr && addr.includes(name), `pickup address "${addr}", want it to name ${name}`);
    // The route line is drawn along the roads (more than the two ends).
    await until(() => page.evaluate(() => window.hextrack.state.route.points.trip > 2), { what: 'route along the roads' });
    await shot(page, 'rider-phone-plan');

    await page.click('#request');
    await page.waitForSelector('#trip:not([hidden])');
    const tripId = (await page.textContent('#trip-id')).trim();
    assert.ok(await onScreen(page, '#trip-status'), 'status on screen after request');
    assert.match(await page.textContent('#trip-from'), new RegExp(name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

    // The driver accepts (once dispatch offered it) and comes closer.
    await until(async () => {
      const r = await server.api('POST', `/v1/trips/${tripId}/accept`, { token: driverTok });
      return r.status === 403 ? null : r;
    }, { what: 'offer, then accept' }).then((r) => assert.equal(r.status, 200, JSON.stringify(r.body)));
    await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'driver_assigned', { what: 'driver_assigned' });
    // 150 m closer, no sooner than 2.5 s after the first fix: on a fast
    // machine the page gets here within a second, and 150 m in a second
    // is a jump the server refuses (implausible_jump).
    await new Promise((r) => setTimeout(r, Math.max(0, firstFix + 2500 - Date.now())));
    await pingOK(server, driverTok, driverId, offset(pickup, 450, 200), seq++);
    await until(async () => (await page.textContent('#eta')).trim() !== '', { what: 'ETA shown' });
    // Scrolled to the very bottom of the page: status and ETA still in view.
    await page.evaluate(() => window.scrollTo(0, document.scrollingElement.scrollHeight));
    assert.ok(await page.evaluate(() => window.scrollY) > 0, 'scrolled');
    assert.ok(await onScreen(page, '#trip-status'), 'status in view when scrolled to the bottom');
    assert.ok(await onScreen(page, '#eta'), 'ETA in view when scrolled to the bottom');
    // The driver's way to the pickup is drawn too.
    await until(() => page.evaluate(() => window.hextrack.state.route.points.approach >= 2), { what: 'approach leg' });

    // Under a minute away: "driver arriving", in the sheet.
    // (60 m a second: a plausible speed, or the server refuses the fix.)
    for (let m = 390; m >= 150; m -= 60) {
      await new Promise((r) => setTimeout(r, 1100));
      await pingOK(server, driverTok, driverId, offset(pickup, m, 200), seq++);
    }
    await until(() => onScreen(page, '#arriving'), { what: 'driver arriving shown in the sheet' });
    assert.match(await page.textContent('#arriving'), /arriving/i);
    await shot(page, 'rider-phone-trip');

    // Cancel asks first; keeping the trip changes nothing.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.click('#cancel');
    await page.waitForSelector('dialog.confirm[open]');
    await shot(page, 'rider-phone-cancel-confirm');
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog.confirm', { state: 'detached' });
    assert.equal((await server.api('GET', `/v1/trips/${tripId}`, { token: driverTok })).body.trip.status, 'driver_assigned');
    await page.click('#cancel');
    await page.click('dialog.confirm button.danger');
    await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'cancelled', { what: 'cancelled' });
    assert.deepEqual(w.external, []);
    assert.deepEqual(w.problems(), []);
  } finally {
    await ctx.close();
  }
});

test('share view: read-only, for a viewer', { skip, timeout: 60000 }, async () => {
  const { p: pickup } = await namedRoad();
  const rider = await server.token('rider', `r_share_${Date.now().toString(36)}`);
  const created = await server.api('POST', '/v1/trips', {
    token: rider, headers: { 'Idempotency-Key': `share-${Date.now()}` },
    body: { kind: 'ride', pickup, dropoff: offset(pickup, 800, 90), payment: 'cash' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.trip.id;
  const sh = await server.api('POST', `/v1/trips/${id}/share`, { token: rider, body: { ttl: '1h' } });
  assert.equal(sh.status, 201, JSON.stringify(sh.body));
  const link = sh.body.url.startsWith('/') ? server.url + sh.body.url : sh.body.url.replace(/^https?:\/\/[^/]+/, server.url);

  for (const vp of [{ name: 'phone', ...PHONE }, { name: 'desktop', viewport: { width: 1280, height: 800 } }]) {
    const ctx = await browser.newContext(vp);
    const page = await ctx.newPage();
    const w = watch(page, server);
    try {
      await page.goto(link);
      await page.waitForSelector('#trip:not([hidden])');
      await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'requested', { what: 'status shown' });
      assert.equal(await page.evaluate(() => document.body.classList.contains('viewer')), true);
      assert.equal((await page.textContent('#trip-title')).trim(), 'Shared trip');
      const text = await page.evaluate(() => document.body.innerText);
      assert.doesNotMatch(text, /Your trip|your driver|Sign-in token|Drag the dropoff|Where to\?/i, 'the page talks to the rider');
      for (const sel of ['#chat-box', '#chat-form', '#signin', '#cancel', '#share', '#plan', '#drag-hint']) {
        assert.equal(await page.isVisible(sel), false, `${sel} visible to a viewer`);
      }
      assert.ok(await page.isVisible('#viewer-note'), 'the viewer is told what they see');
      // Nothing to drag: the markers are not draggable.
      await page.waitForSelector('.pin.dropoff');
      assert.equal(await page.$$eval('.pin', (p) => p.filter((e) => e.classList.contains('leaflet-marker-draggable')).length), 0);
      assert.ok(await onScreen(page, '#trip-status'), 'status on screen');
      // A click on the map sets nothing.
      const before = await page.evaluate(() => ({ ...window.hextrack.state.dropoff }));
      await page.click('#map', { position: { x: 60, y: 60 } });
      assert.deepEqual(await page.evaluate(() => ({ ...window.hextrack.state.dropoff })), before);
      // The addresses are shown to viewers too.
      assert.ok((await page.getAttribute('#trip-from', 'data-address')).length > 0, 'pickup address');
      await shot(page, `rider-share-${vp.name}`);
      assert.deepEqual(w.external, []);
      assert.deepEqual(w.problems(), []);
    } finally {
      await ctx.close();
    }
  }
});
