// Online payment end to end under `make run`'s set-up (issue 21): the
// server and the payment gateway simulator are started from the command
// lines scripts/run.sh runs (`scripts/run.sh --print-commands`: one source
// for the wiring) — the server on the embedded Redis with the Porto map
// and --payment-gateway-url http://localhost:<gateway port>, no webhook
// secret given (the server's dev default, which run.sh hands the gateway),
// `drivesim gateway` with its default delays, duplicates and reordering.
// Only the ports differ (free ones: HEXTRACK_ADDR and GATEWAY_PORT, which
// run.sh reads) and the data dir (a temporary one); the driver simulator
// is not started (it plays no part in payment). The rider opens the page
// at the address make run prints, requests a delivery paid online, "Pay
// now" goes to the gateway's checkout, pays, comes back, and the trip
// shows paid: confirmed by the gateway's signed webhook (the server
// refuses one it can't verify; the gateway reports its deliveries).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { Server, launch, watch, shot, skipReason, until, freePort, repoRoot, drivesimBinary } from './harness.mjs';

const skip = skipReason();
let browser;
let server;
let gateway;
let cmds;

// runCommands is what scripts/run.sh would run with make run's defaults
// on these ports: {server: argv, gateway: argv, rider: [url]}.
function runCommands(port, gwPort) {
  const env = { ...process.env, HEXTRACK_ADDR: `:${port}`, GATEWAY_PORT: String(gwPort) };
  for (const k of ['MAP', 'GATEWAY_FAIL']) delete env[k]; // make run's defaults
  const out = execFileSync('bash', ['scripts/run.sh', '--print-commands'], { cwd: repoRoot, env, encoding: 'utf8' });
  const m = {};
  for (const line of out.trim().split('\n')) {
    const [name, ...argv] = line.split('\t');
    m[name] = argv;
  }
  return m;
}

before(async () => {
  if (skip) return;
  const port = await freePort();
  const gwPort = await freePort();
  cmds = runCommands(port, gwPort);
  assert.match(cmds.server[0], /\/hextrack$/);
  assert.match(cmds.gateway[0], /\/drivesim$/);
  // make run's server, on a data dir of its own, no secret given.
  server = await new Server({ port, secret: null, args: cmds.server.slice(1) }).start();
  const logs = [];
  gateway = spawn(drivesimBinary(), cmds.gateway.slice(1), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  gateway.logs = logs;
  gateway.stdout.on('data', (b) => logs.push(b.toString()));
  gateway.stderr.on('data', (b) => logs.push(b.toString()));
  gateway.exited = new Promise((r) => gateway.on('exit', r));
  await until(async () => (await fetch(`http://127.0.0.1:${gwPort}/healthz`)).ok, { what: `gateway up (${logs.join('')})` });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (gateway && gateway.exitCode === null) {
    gateway.kill('SIGINT');
    await gateway.exited;
  }
  if (server) await server.stop();
});

test('make run: a rider pays online through the page, the gateway and back; the signed webhook makes it paid', { skip, timeout: 120000 }, async () => {
  const rider = cmds.rider[0]; // where make run sends the rider: http://localhost:<port>/
  const gw = cmds.server[cmds.server.indexOf('--payment-gateway-url') + 1];
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const page = await ctx.newPage();
    const w = watch(page, server);
    // Leaving for the checkout aborts the page's open requests and stream.
    w.allow.push(/^failed (GET|POST) \/v1\/[^ ]*: net::ERR_ABORTED$/);
    await page.goto(rider);
    await page.waitForSelector('.leaflet-container');
    await page.waitForSelector('body[data-ready]');
    await page.mouse.click(450, 400);
    await page.mouse.click(600, 300);
    await page.check('input[name=kind][value=delivery]');
    await page.selectOption('#payment', 'online');
    await until(async () => !(await page.isDisabled('#request')), { what: 'request enabled' });
    await page.click('#request');
    await page.waitForSelector('#trip:not([hidden])');
    await until(async () => (await page.getAttribute('#trip-status', 'data-status')) === 'awaiting_payment', { what: 'awaiting_payment' });
    const tripId = (await page.textContent('#trip-id')).trim();
    await page.waitForSelector('#pay-now:not([hidden])');
    const amount = (await page.textContent('#payment-amount')).trim();
    await page.click('#pay-now');
    // The gateway make run starts, at the address the server was given.
    await page.waitForURL((u) => u.href.startsWith(`${gw}/checkout/`), { timeout: 15000 });
    assert.equal((await page.textContent('#amount')).trim(), amount);
    await shot(page, 'payment-run-checkout');
    await page.click('#pay');
    // Back on the rider page make run serves.
    await page.waitForURL((u) => u.href.startsWith(rider), { timeout: 15000 });
    await until(async () => (await page.getAttribute('#payment-box', 'data-status')) === 'succeeded', { timeout: 20000, what: 'payment succeeded' });
    assert.equal((await page.textContent('#payment-status')).trim(), 'Paid');
    assert.equal((await page.textContent('#trip-id')).trim(), tripId);
    await until(async () => ['requested', 'driver_assigned', 'expired'].includes(await page.getAttribute('#trip-status', 'data-status')), { what: 'the delivery past awaiting payment' });
    assert.ok(await page.isHidden('#pay-now'));
    await shot(page, 'payment-run-paid');
    // The server holds it as paid, by the gateway's word.
    const paymentId = await page.evaluate(() => {
      const e = performance.getEntriesByType('resource').map((x) => new URL(x.name).pathname).find((p) => p.startsWith('/v1/payments/'));
      return e && e.split('/').pop();
    });
    assert.ok(paymentId, 'the page polled its payment');
    const token = await page.evaluate(() => localStorage.getItem('hextrack.token.rider'));
    const p = await server.api('GET', `/v1/payments/${paymentId}`, { token });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal(p.body.status, 'succeeded', JSON.stringify(p.body));
    // Only a signed webhook could say so: a well-formed one signed with
    // another secret is refused and changes nothing.
    const body = JSON.stringify({ id: 'evt_forged_1', type: 'payment.failed', created: Math.floor(Date.now() / 1000),
      data: { payment_id: paymentId, amount: 100, currency: 'EUR' } });
    const t = Math.floor(Date.now() / 1000);
    const v1 = createHmac('sha256', 'not-the-dev-webhook-secret').update(`${t}.${body}`).digest('hex');
    const forged = await fetch(`${server.url}/v1/webhooks/payments`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'Hextrack-Signature': `t=${t},v1=${v1}` }, body,
    });
    const fb = await forged.json();
    assert.equal(forged.status, 401, JSON.stringify(fb));
    assert.equal(fb.error.code, 'invalid_signature');
    assert.equal((await server.api('GET', `/v1/payments/${paymentId}`, { token })).body.status, 'succeeded');
    // The gateway's report (on Ctrl-C, as make run stops it): one
    // checkout, its webhooks delivered, none given up.
    gateway.kill('SIGINT');
    await gateway.exited;
    const report = gateway.logs.join('').match(/gateway: (\d+) checkouts, (\d+) webhook requests, (\d+) deliveries given up/);
    assert.ok(report, gateway.logs.join(''));
    assert.equal(Number(report[1]), 1);
    assert.ok(Number(report[2]) >= 1);
    assert.equal(Number(report[3]), 0);
    // Requests went to make run's server and gateway only (localhost, the
    // address make run prints, is outside the harness's 127.0.0.1 view).
    assert.deepEqual(w.external.filter((u) => !u.startsWith(rider) && !u.startsWith(`${gw}/`)), []);
    assert.deepEqual(w.problems(), []);
  } finally {
    await ctx.close();
  }
});
