// Accessibility of every page, checked by axe-core in Chromium: no serious
// or critical violation (colour contrast of every text at least 4.5:1,
// names, roles, landmarks) on the rider page (desktop and phone, planning
// and during a trip with its status badges and bottom sheet), the share
// view, the ops dashboard (with trips in its table and a confirmation
// open) and the driver page; and the keyboard flows still work.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Server, launch, skipReason, until, ping } from './harness.mjs';
import { offset } from './geo-node.mjs';

const skip = skipReason();
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
const C = { lat: 41.1496, lng: -8.6109 };
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

// audit runs axe-core on the page as it is and returns its serious and
// critical violations, one line each with the offending elements.
async function audit(page) {
  // Evaluated over the DevTools protocol, not as a page script: the pages'
  // CSP (script-src 'self') stays in force.
  await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ').slice(0, 160)}`) }));
  });
  return res.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 6).join('\n    ')}`);
}

async function open(ctxOpts, path, ready) {
  const ctx = await browser.newContext(ctxOpts);
  const page = await ctx.newPage();
  await page.goto(server.url + path);
  await page.waitForSelector(ready);
  await page.waitForSelector('.leaflet-container[data-map-source="osm"]');
  await page.waitForTimeout(500);
  return { ctx, page };
}

// A driver near C, and a rider's trip it accepts: green status badges.
async function assignedTrip(rider) {
  const id = `d_a11y_${Date.now().toString(36)}`;
  const tok = await server.token('driver', id);
  assert.equal((await ping(server, tok, id, offset(C, 300, 90), Date.now())).status, 200);
  await server.api('PUT', `/v1/drivers/${id}/status`, { token: tok, body: { status: 'available' } });
  const r = await server.api('POST', '/v1/trips', {
    token: rider, headers: { 'Idempotency-Key': `a11y-${id}` },
    body: { kind: 'ride', pickup: C, dropoff: offset(C, 900, 45), payment: 'cash' },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const trip = r.body.trip.id;
  await until(async () => (await server.api('POST', `/v1/trips/${trip}/accept`, { token: tok })).status === 200, { what: 'accept' });
  return trip;
}

for (const [name, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  test(`rider page on ${name}: no serious axe violations, planning and on a trip`, { skip, timeout: 90000 }, async () => {
    const { ctx, page } = await open(vp, '/', 'body[data-ready]');
    try {
      assert.deepEqual(await audit(page), [], 'planning');
      // The skip link, focused (it is only drawn then).
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
      assert.deepEqual(await audit(page), [], 'skip link focused');
      // A trip of this page's rider, assigned: the sheet and green badge.
      const sub = await page.evaluate(() => JSON.parse(atob(window.hextrack.state.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).sub);
      const trip = await assignedTrip(await server.token('rider', sub));
      await page.evaluate((id) => localStorage.setItem('hextrack.rider.trip', id), trip);
      await page.reload();
      await page.waitForSelector('#trip:not([hidden])');
      await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'driver_assigned', { what: 'assigned' });
      assert.deepEqual(await audit(page), [], 'on a trip');
      // Cancel's confirmation, by keyboard: focus on "Keep trip", Escape keeps.
      await page.focus('#cancel');
      await page.keyboard.press('Enter');
      await page.waitForSelector('dialog.confirm[open]');
      assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Keep trip');
      assert.deepEqual(await audit(page), [], 'confirmation open');
      await page.keyboard.press('Escape');
      await page.waitForSelector('dialog.confirm', { state: 'detached' });
      assert.equal(await page.evaluate(() => document.activeElement.id), 'cancel', 'focus back on Cancel');
    } finally {
      await ctx.close();
    }
  });
}

test('share view: no serious axe violations', { skip, timeout: 60000 }, async () => {
  const rider = await server.token('rider', `r_a11y_share_${Date.now().toString(36)}`);
  const trip = await assignedTrip(rider);
  const sh = await server.api('POST', `/v1/trips/${trip}/share`, { token: rider, body: { ttl: '1h' } });
  assert.equal(sh.status, 201);
  const link = new URL(sh.body.url, server.url);
  for (const vp of [DESKTOP, PHONE]) {
    const { ctx, page } = await open(vp, link.pathname + link.search + link.hash, '#trip:not([hidden])');
    try {
      await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'driver_assigned', { what: 'assigned' });
      assert.deepEqual(await audit(page), []);
    } finally {
      await ctx.close();
    }
  }
});

test('ops page: no serious axe violations, with trips and a confirmation', { skip, timeout: 60000 }, async () => {
  const rider = await server.token('rider', `r_a11y_ops_${Date.now().toString(36)}`);
  const trip = await assignedTrip(rider);
  const { ctx, page } = await open(DESKTOP, '/ops', '#c-inview');
  try {
    await page.waitForSelector(`#trips tr[data-trip="${trip}"][data-status="driver_assigned"]`);
    await until(async () => (await page.$$('#drivers tr')).length > 0, { what: 'driver list' });
    assert.deepEqual(await audit(page), [], 'dashboard');
    // Reassign by keyboard: the button, Enter, the dialog, Escape.
    await page.focus(`button[aria-label="Reassign trip ${trip}"]`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('dialog.confirm[open]');
    assert.deepEqual(await audit(page), [], 'confirmation open');
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog.confirm', { state: 'detached' });
  } finally {
    await ctx.close();
  }
  const phone = await open(PHONE, '/ops', '#c-inview');
  try {
    assert.deepEqual(await audit(phone.page), [], 'ops on a phone');
  } finally {
    await phone.ctx.close();
  }
});

test('driver page: no serious axe violations, signed out and on duty', { skip, timeout: 60000 }, async () => {
  for (const vp of [DESKTOP, PHONE]) {
    const ctx = await browser.newContext(vp);
    await ctx.addInitScript(() => localStorage.setItem('hextrack.driver.channel', 'rest'));
    const page = await ctx.newPage();
    try {
      await page.goto(`${server.url}/driver`);
      await page.waitForSelector('#driver-id');
      await page.waitForTimeout(500);
      assert.deepEqual(await audit(page), [], 'signed out');
      await page.fill('#driver-id', `d_a11y_page_${vp.viewport.width}`);
      await page.click('#signin-dev');
      await page.waitForSelector('#console:not([hidden])');
      await page.click('#go-online');
      await until(async () => (await page.textContent('#status')) === 'available', { what: 'available' });
      assert.deepEqual(await audit(page), [], 'on duty');
      await page.click('#go-offline').catch(() => {});
    } finally {
      await ctx.close();
    }
  }
});
