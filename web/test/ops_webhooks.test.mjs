// Webhook endpoints on the ops page (issue 18: "an endpoint failing for
// long is paused and ops are told"): an endpoint whose receiver refuses
// connections fails its deliveries until --webhook-pause-after (1 s here)
// has passed, and is paused. The ops page lists it first, marked paused,
// counts it in the card's heading, shows its delivery log with the
// attempts and the error, and its Resume button enables it again. The
// paused gauge in /metrics says the same. No serious axe violation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, watch, shot, skipReason, until, freePort } from './harness.mjs';
import { audit } from './axe.mjs';

const skip = skipReason();
let server;
let browser;

before(async () => {
  if (skip) return;
  server = await new Server({ env: { HEXTRACK_WEBHOOK_PAUSE_AFTER: '1s' } }).start();
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

async function pausedGauge() {
  const r = await fetch(`${server.url}/metrics`);
  const m = /^hextrack_webhook_endpoints_paused (\S+)$/m.exec(await r.text());
  return m ? Number(m[1]) : NaN;
}

test('a failing webhook endpoint is paused, shown on the ops page and resumed from it', { skip, timeout: 120000 }, async () => {
  const ops = await server.token('ops', 'ops_wh');
  // Nothing listens on this port: every attempt is refused.
  const dead = `http://127.0.0.1:${await freePort()}/hooks`;
  const created = await until(async () => {
    const r = await server.api('POST', '/v1/webhooks/endpoints', { token: ops, body: { url: dead, filter: ['trip.*'] } });
    return r.status === 503 ? null : r; // the archive opens in the background
  }, { what: 'the archive to open', timeout: 30000 });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const ep = created.body;
  const ok = await server.api('POST', '/v1/webhooks/endpoints', {
    token: ops, body: { url: `http://127.0.0.1:${await freePort()}/other`, filter: ['payment.status'] },
  });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));

  // A trip's events are archived, routed to the endpoint and fail.
  const rider = await server.token('rider', 'r_wh');
  const trip = await server.api('POST', '/v1/trips', {
    token: rider, headers: { 'Idempotency-Key': `wh-${Date.now()}` },
    body: { kind: 'ride', pickup: { lat: 41.1496, lng: -8.6109 }, dropoff: { lat: 41.155, lng: -8.62 }, payment: 'cash' },
  });
  assert.equal(trip.status, 201, JSON.stringify(trip.body));
  await until(async () => {
    const r = await server.api('GET', `/v1/webhooks/endpoints/${ep.id}`, { token: ops });
    return r.body && r.body.status === 'paused';
  }, { what: 'the endpoint to be paused', timeout: 60000, interval: 500 });
  // Every node refreshes the gauge from the archive on its sweep (30 s).
  await until(async () => (await pausedGauge()) === 1, { what: 'hextrack_webhook_endpoints_paused 1', timeout: 45000, interval: 1000 });

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const w = watch(page, server);
  try {
    await page.goto(`${server.url}/ops`);
    const row = page.locator(`#webhooks tr[data-endpoint="${ep.id}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-status'), 'paused');
    // Paused first, and counted in the heading.
    assert.equal(await page.locator('#webhooks tr').first().getAttribute('data-endpoint'), ep.id);
    assert.equal((await page.textContent('#webhooks-count')).trim(), '1 paused');
    assert.match(await page.textContent('#webhooks-caption'), /2 endpoints; 1 paused/);
    // Its log: the trip's event, still pending, attempted and refused.
    await row.getByRole('button', { name: /Delivery log/ }).click();
    const logRow = page.locator('#wh-log-rows tr').first();
    await logRow.waitFor();
    const cells = await logRow.locator('td').allTextContents();
    assert.match(cells[1], /^trip\.\S+ \d+-\d+$/, cells.join(' | '));
    assert.equal(cells[2], 'pending');
    assert.ok(Number(cells[3]) >= 2, `attempts ${cells[3]}`);
    assert.match(cells[5], /refused|connect/i);
    const v = await audit(page);
    assert.deepEqual(v, [], v.join('\n'));
    await shot(page, 'ops-webhooks-paused');
    // Resume: the endpoint is enabled again; no longer paused anywhere.
    await row.getByRole('button', { name: /Resume/ }).click();
    await until(async () => (await row.getAttribute('data-status')) !== 'paused', { what: 'the row to leave paused' });
    const after = await server.api('GET', `/v1/webhooks/endpoints/${ep.id}`, { token: ops });
    assert.notEqual(after.body.status, 'paused');
    assert.equal(after.body.enabled, true);
    assert.equal((await page.textContent('#webhooks-count')).trim(), '');
    assert.deepEqual(w.problems(), []);
    assert.deepEqual(w.external, []);
  } finally {
    await ctx.close();
  }
});
