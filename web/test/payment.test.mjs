// Online payment of a delivery in a real browser: the rider requests a
// delivery paid online, goes to the simulated gateway's checkout page
// (drivesim gateway), pays, comes back, and the page polls the payment
// status until it is final — also across a page refresh in the middle.
// Then a declined checkout cancels the delivery.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Server, launch, watch, shot, skipReason, until, freePort, repoRoot } from './harness.mjs';

const skip = skipReason();
const SECRET = 'whsec_browser_test_0123456789';
let browser;
let server;
let gateway;
let gwURL;

// startGateway builds drivesim and runs "drivesim gateway" on a free port:
// the webhooks come 1–1.5 s after paying, delivered twice and followed by
// a stale event of an earlier attempt; nothing fails by chance.
async function startGateway(serverURL, port) {
  const bin = path.join(repoRoot, 'test-artifacts', 'bin', 'drivesim');
  mkdirSync(path.dirname(bin), { recursive: true });
  execFileSync('go', ['build', '-o', bin, './cmd/drivesim'], { cwd: repoRoot, stdio: 'inherit' });
  const proc = spawn(bin, ['gateway', '--server', serverURL, '--secret', SECRET, '--listen', `127.0.0.1:${port}`,
    '--min-delay', '1s', '--max-delay', '1500ms', '--dup', '1', '--reorder', '1', '--fail', '0', '--seed', '1'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = [];
  proc.stdout.on('data', (b) => logs.push(b.toString()));
  proc.stderr.on('data', (b) => logs.push(b.toString()));
  const url = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${url}/healthz`)).ok, { what: `gateway up (${logs.join('')})` });
  return { proc, url, logs };
}

before(async () => {
  if (skip) return;
  const port = await freePort();
  const gwPort = await freePort();
  gwURL = `http://127.0.0.1:${gwPort}`;
  server = await new Server({ port, env: { HEXTRACK_PAYMENT_GATEWAY_URL: gwURL, HEXTRACK_PAYMENT_WEBHOOK_SECRETS: `old_secret_x,${SECRET}` } }).start();
  gateway = await startGateway(server.url, gwPort);
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (gateway) gateway.proc.kill('SIGTERM');
  if (server) await server.stop();
});

// requestDelivery opens the rider page and requests an online-paid
// delivery through the UI.
async function requestDelivery(ctx) {
  const page = await ctx.newPage();
  const w = watch(page, server);
  // Leaving for the checkout (and the refresh) aborts the open SSE stream.
  w.allow.push(/^failed GET \/v1\/trips\/[^/]+\/events: net::ERR_ABORTED$/);
  // So does any of the page's API requests still in flight at that moment
  // (the payment's creation or a poll of it): the browser cancels them.
  w.allow.push(/^failed (GET|POST) \/v1\/(trips|payments)\/[^ ]*: net::ERR_ABORTED$/);
  await page.goto(server.url + '/');
  await page.waitForSelector('.leaflet-container');
  await page.waitForSelector('body[data-ready]'); // the map's clicks are wired
  await page.mouse.click(450, 400);
  await page.mouse.click(600, 300);
  await page.check('input[name=kind][value=delivery]');
  await page.selectOption('#payment', 'online');
  await until(async () => !(await page.isDisabled('#request')), { what: 'request enabled' });
  await page.click('#request');
  await page.waitForSelector('#trip:not([hidden])');
  await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'awaiting_payment', { what: 'awaiting_payment' });
  await page.waitForSelector('#pay-now:not([hidden])');
  const amount = (await page.textContent('#payment-amount')).trim();
  assert.match(amount, /^\d+\.\d\d EUR$/);
  const tripId = (await page.textContent('#trip-id')).trim();
  return { page, w, tripId, amount };
}

test('pay online: checkout, come back, poll until paid (also after a refresh)', { skip, timeout: 60000 }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const { page, w, tripId, amount } = await requestDelivery(ctx);
    await shot(page, 'payment-awaiting');
    await page.click('#pay-now');
    await page.waitForURL((u) => u.href.startsWith(gwURL + '/checkout/'));
    assert.equal((await page.textContent('#amount')).trim(), amount);
    await page.click('#pay');
    // Back on the rider map, polling.
    await page.waitForURL((u) => u.href.startsWith(server.url + '/'));
    await page.waitForSelector('#payment-box:not([hidden])');
    assert.equal((await page.textContent('#trip-id')).trim(), tripId);
    // Refresh while the payment may still be pending: polling resumes.
    await page.reload();
    await until(async () => (await page.getAttribute('#payment-box', 'data-status')) === 'succeeded', { timeout: 20000, what: 'payment succeeded' });
    assert.equal((await page.textContent('#payment-status')).trim(), 'Paid');
    await until(async () => ['requested', 'expired'].includes(await page.getAttribute('#trip-status', 'data-status')), { what: 'trip requested' });
    assert.ok(await page.isHidden('#pay-now'));
    assert.equal(await page.evaluate(() => localStorage.getItem('hextrack.rider.payment')), null, 'checkout flag cleared');
    await shot(page, 'payment-paid');
    // Duplicated and stale webhooks arrive after this: the page stays paid.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await page.getAttribute('#payment-box', 'data-status'), 'succeeded');
    const polls = await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/payments/')).length);
    assert.ok(polls >= 1, 'the page polled the payment');
    assert.deepEqual(w.external.filter((u) => !u.startsWith(gwURL)), [], 'requests outside the server and the gateway');
    assert.deepEqual(w.problems(), [], 'console errors');
  } finally {
    await ctx.close();
  }
});

test('a declined checkout cancels the delivery', { skip, timeout: 60000 }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const { page, w } = await requestDelivery(ctx);
    await page.click('#pay-now');
    await page.waitForURL((u) => u.href.startsWith(gwURL + '/checkout/'));
    await page.click('#decline');
    await page.waitForURL((u) => u.href.startsWith(server.url + '/'));
    await until(async () => (await page.getAttribute('#payment-box', 'data-status')) === 'failed', { timeout: 20000, what: 'payment failed' });
    await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'cancelled', { what: 'trip cancelled' });
    await shot(page, 'payment-failed');
    assert.deepEqual(w.problems(), [], 'console errors');
  } finally {
    await ctx.close();
  }
});
