// The ops page as operators use it: the trips table holds still under the
// pointer while trips stream in (new rows wait, then come in marked),
// filters and search narrow it, Cancel and Reassign ask first; the driver
// list searches and shows how long ago each driver reported; zoomed in,
// "in view" counts the view and the H3 layer gets finer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, watch, shot, skipReason, until, ping } from './harness.mjs';
import { offset } from './geo-node.mjs';

const skip = skipReason();
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

// Central Porto, on its roads.
const C = { lat: 41.1496, lng: -8.6109 };
const run = Date.now().toString(36);

async function newTrip(rider, i) {
  const r = await server.api('POST', '/v1/trips', {
    token: rider, headers: { 'Idempotency-Key': `opst-${run}-${i}` },
    body: { kind: 'ride', pickup: offset(C, 100 + 40 * i, 30 * i), dropoff: offset(C, 1500, 90 + 10 * i), payment: 'cash' },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.trip.id;
}

// rowAt returns the trip id of the table row drawn at (x, y).
function rowAt(page, x, y) {
  return page.evaluate(([px, py]) => {
    const tr = document.elementFromPoint(px, py)?.closest('tr[data-trip]');
    return tr ? tr.dataset.trip : null;
  }, [x, y]);
}

const order = (page) => page.$$eval('#trips tr', (r) => r.map((x) => x.dataset.trip));

test('ops: a steady trips table, filters, confirmations, driver list, zoom', { skip, timeout: 150000 }, async () => {
  // Drivers 500 m apart, so that zoomed in on one, only it is in view.
  const drivers = [];
  for (let i = 0; i < 5; i++) {
    const id = `d_ops_${run}_${i}`;
    const tok = await server.token('driver', id);
    assert.equal((await ping(server, tok, id, offset(C, 500 * i, 75), Date.now())).status, 200);
    assert.equal((await server.api('PUT', `/v1/drivers/${id}/status`, { token: tok, body: { status: 'available' } })).status, 200);
    drivers.push({ id, tok });
  }
  const rider = await server.token('rider', `r_ops_${run}`);
  const first = [];
  for (let i = 0; i < 6; i++) first.push(await newTrip(rider, i));

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const w = watch(page, server);
  try {
    await page.goto(`${server.url}/ops`);
    await page.waitForSelector('.leaflet-container[data-map-source="osm"]');
    await until(async () => (await page.$$('#trips tr')).length >= 6, { what: 'six trip rows' });
    // The stream carries no heading and these drivers have not moved: dots,
    // not arrows pointing north.
    await until(async () => (await page.$$('.vehicle.no-heading')).length >= 5, { what: 'heading-less drivers as dots' });
    assert.equal(await page.$$eval('.vehicle:not(.no-heading)', (v) => v.length), 0);
    await page.$eval('#trips-table', (e) => e.scrollIntoView({ block: 'center' }));

    // Pointer on the third row: trips stream in, one row changes status,
    // and nothing moves under the pointer.
    const target = (await order(page))[2];
    const box = await page.locator(`#trips tr[data-trip="${target}"] td.driver`).boundingBox();
    const x = box.x + box.width / 2;
    const y = box.y + box.height / 2;
    await page.mouse.move(x, y);
    const before = await order(page);
    const known = await page.evaluate(() => window.hextrack.state.trips.size);
    const late = [];
    for (let i = 6; i < 9; i++) late.push(await newTrip(rider, i));
    const changed = before[1]; // above the pointer: its change must not shift the row below
    assert.equal((await server.api('POST', `/v1/trips/${changed}/cancel`, { token: rider, body: { reason: 'test' } })).status, 200);
    await until(() => page.evaluate((n) => window.hextrack.state.trips.size >= n + 3, known), { what: 'new trips received' });
    await until(async () => (await page.getAttribute(`#trips tr[data-trip="${changed}"]`, 'data-status')) === 'cancelled', { what: 'status changed in place' });
    await until(async () => /waiting/.test(await page.textContent('#trips-note')), { what: 'paused note' });
    assert.deepEqual(await order(page), before, 'rows moved under the pointer');
    assert.equal(await rowAt(page, x, y), target, 'another row under the pointer');
    // Not even by a pixel: the changed row kept its height.
    assert.deepEqual(await page.locator(`#trips tr[data-trip="${target}"] td.driver`).boundingBox(), box);
    await shot(page, 'ops-table-paused');

    // Pointer away: the new trips come in on top, marked new.
    await page.mouse.move(300, 300);
    await until(async () => (await order(page))[0] !== before[0], { what: 'new rows shown' });
    const now = await order(page);
    for (const id of late) assert.ok(now.indexOf(id) >= 0 && now.indexOf(id) < 3, `${id} on top: ${now}`);
    assert.equal(await page.$eval(`#trips tr[data-trip="${late[0]}"]`, (tr) => tr.classList.contains('new') && !!tr.querySelector('.new-tag')), true);
    assert.equal(await page.$eval(`#trips tr[data-trip="${first[0]}"]`, (tr) => tr.classList.contains('new')), false, 'an old row marked new');
    // Existing rows kept their order (newest created first, stable).
    assert.deepEqual(now.filter((id) => before.includes(id)), before);

    // Filters: status, driver, age, search.
    await page.selectOption('#f-status', 'cancelled');
    assert.deepEqual(await order(page), [changed]);
    await page.selectOption('#f-status', 'open');
    assert.ok(!(await order(page)).includes(changed));
    await page.selectOption('#f-status', 'all');
    await page.fill('#f-search', late[1]);
    assert.deepEqual(await order(page), [late[1]]);
    await page.fill('#f-search', '');
    await page.fill('#f-driver', 'none');
    assert.equal((await order(page)).length, 9, 'no trip has a driver yet');
    await page.fill('#f-driver', drivers[0].id);
    assert.deepEqual(await order(page), []);
    await page.fill('#f-driver', '');
    await page.selectOption('#f-age', '5m');
    assert.equal((await order(page)).length, 9);
    await page.selectOption('#f-age', '');

    // Cancel asks; "Keep trip" keeps it.
    const victim = first[3];
    await page.click(`button[aria-label="Cancel trip ${victim}"]`);
    await page.waitForSelector('dialog.confirm[open]');
    assert.match(await page.textContent('dialog.confirm h2'), new RegExp(victim));
    await shot(page, 'ops-confirm-cancel');
    await page.click('dialog.confirm button.keep');
    await page.waitForSelector('dialog.confirm', { state: 'detached' });
    assert.equal((await server.api('GET', `/v1/trips/${victim}`, { token: rider })).body.trip.status, 'requested');
    await page.click(`button[aria-label="Cancel trip ${victim}"]`);
    await page.click('dialog.confirm button.danger');
    await until(async () => (await page.getAttribute(`#trips tr[data-trip="${victim}"]`, 'data-status')) === 'cancelled', { what: 'cancelled row' });

    // Reassign asks too: a driver takes a trip, ops reassign it.
    const taken = first[2];
    let by = null;
    await until(async () => {
      for (const d of drivers) {
        const r = await server.api('POST', `/v1/trips/${taken}/accept`, { token: d.tok });
        if (r.status === 200) { by = d; return true; }
      }
      return false;
    }, { what: 'a driver accepts', timeout: 30000 });
    await until(async () => (await page.getAttribute(`#trips tr[data-trip="${taken}"]`, 'data-status')) === 'driver_assigned', { what: 'assigned row' });
    await page.click(`button[aria-label="Reassign trip ${taken}"]`);
    await page.waitForSelector('dialog.confirm[open]');
    assert.match(await page.textContent('dialog.confirm'), new RegExp(by.id));
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog.confirm', { state: 'detached' });
    assert.equal((await server.api('GET', `/v1/trips/${taken}`, { token: rider })).body.trip.driver_id, by.id);
    await page.click(`button[aria-label="Reassign trip ${taken}"]`);
    await page.click('dialog.confirm button.danger');
    await until(async () => (await server.api('GET', `/v1/trips/${taken}`, { token: rider })).body.trip.driver_id !== by.id, { what: 'reassigned' });

    // The driver list: every driver, searchable, with the age of its last fix.
    await until(async () => (await page.$$('#drivers tr')).length >= 5, { what: 'driver list' });
    await page.fill('#d-search', drivers[3].id);
    await until(async () => (await page.$$eval('#drivers tr', (r) => r.map((x) => x.dataset.driver))).join() === drivers[3].id, { what: 'driver search' });
    assert.match(await page.textContent(`#drivers tr[data-driver="${drivers[3].id}"] td.age`), /^\d+ (s|min) ago$/);
    await page.fill('#d-search', '');

    // Zoomed right in on one driver: "in view" is the view, not the city,
    // and the hex layer is at r9.
    await page.evaluate((p) => { window.hextrack.map.setView([p.lat, p.lng], 18, { animate: false }); }, offset(C, 0, 75));
    await until(async () => (await page.textContent('#c-inview')).trim() === '1', { what: 'one driver in view', timeout: 20000 });
    await until(async () => (await page.textContent('#hex-res')).trim() === 'r9', { what: 'r9 hexes' });
    await page.evaluate((p) => { window.hextrack.map.setView([p.lat, p.lng], 12, { animate: false }); }, C);
    await until(async () => (await page.textContent('#hex-res')).trim() === 'r7', { what: 'r7 hexes' });
    await until(async () => Number(await page.textContent('#c-inview')) >= 5, { what: 'all in view', timeout: 20000 });
    await shot(page, 'ops-filters');
    // Each move of the view re-subscribes the viewport stream: the browser
    // reports the closed one as aborted.
    w.allow.push(/GET \/v1\/ops\/drivers\/stream: net::ERR_ABORTED/);
    assert.deepEqual(w.external, []);
    assert.deepEqual(w.problems(), []);
  } finally {
    await ctx.close();
  }
});
