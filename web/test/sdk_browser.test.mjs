// @hextrack/client in Chromium, on the rider page: behind a proxy that
// buffers Server-Sent Events the page's "auto" transport notices (no
// first byte while a plain GET works), follows the trip over long-poll,
// and goes back to SSE once the proxy lets the stream through.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, watch, shot, skipReason, until } from './harness.mjs';
import { driverReady, requestTrip, accept, proxy } from './sdk-env.mjs';

const skip = skipReason();
let browser;

before(async () => { if (!skip) browser = await launch(); });
after(async () => { if (browser) await browser.close(); });

test('rider page behind a buffering proxy: long-poll, then back to SSE', { skip, timeout: 120000 }, async () => {
  const server = await new Server().start();
  let holding = true;
  const px = await proxy(server.url, { buffer: () => holding });
  try {
    const d = await driverReady(server);
    const riderId = `r_sdkbrowser_${Math.random().toString(16).slice(2, 8)}`;
    const { riderTok, tripId } = await requestTrip(server, d.c, riderId);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await ctx.addInitScript(({ tok, sub, trip }) => {
      if (sessionStorage.getItem('seeded')) return;
      sessionStorage.setItem('seeded', '1');
      localStorage.setItem('hextrack.token.rider', tok);
      localStorage.setItem('hextrack.sub.rider', sub);
      localStorage.setItem('hextrack.rider.trip', trip);
    }, { tok: riderTok, sub: riderId, trip: tripId });
    const page = await ctx.newPage();
    const w = watch(page, { port: Number(new URL(px.url).port) });
    // The held-back stream is aborted by the page: expected.
    w.allow.push(/ERR_ABORTED|net::ERR_/);
    await page.goto(px.url + '/');
    assert.equal(await page.inputValue('#transport'), 'auto');
    const conn = async () => ({ state: await page.getAttribute('#conn', 'data-state'), transport: await page.getAttribute('#conn', 'data-transport') });
    await until(async () => { const c = await conn(); return c.transport === 'longpoll' && c.state === 'live'; }, { timeout: 30000, what: 'live on long-poll' });
    assert.ok(px.counts.sse >= 1, 'SSE was tried first');
    assert.equal((await accept(server, d, tripId)).status, 200);
    await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'driver_assigned', { timeout: 30000, what: 'driver_assigned over long-poll' });
    await shot(page, 'rider-buffering-proxy-longpoll');
    holding = false;
    await until(async () => { const c = await conn(); return c.transport === 'sse' && ['live', 'resumed'].includes(c.state); }, { timeout: 60000, what: 'back on SSE' });
    assert.equal((await server.api('POST', `/v1/trips/${tripId}/arrived`, { token: d.driverTok })).status, 200);
    await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'driver_arrived', { timeout: 30000, what: 'driver_arrived over SSE' });
    const timeline = await page.$$eval('#timeline li', (li) => li.map((x) => x.dataset.status));
    assert.deepEqual(timeline, ['requested', 'driver_assigned', 'driver_arrived']);
    assert.deepEqual(w.external, []);
    assert.deepEqual(w.problems(), []);
    await ctx.close();
  } finally {
    await px.close();
    await server.stop();
  }
});
