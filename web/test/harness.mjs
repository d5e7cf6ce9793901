// Shared harness for the browser tests: builds and starts the real server
// (embedded Redis unless a Redis URL is given) on a free port, launches
// Debian's Chromium through playwright-core, watches pages for console
// errors, failed requests and requests leaving the server, and saves
// screenshots under <repo>/test-artifacts/screenshots/.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(webDir, '..');
export const shotsDir = path.join(repoRoot, 'test-artifacts', 'screenshots');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// skipReason returns why browser tests can't run here, or false when they can.
// Under CI=true a missing Chromium is a failure, never a skip.
export function skipReason() {
  if (existsSync(CHROMIUM)) return false;
  const msg = `Chromium not found at ${CHROMIUM} (apt-get install chromium)`;
  if (process.env.CI === 'true') throw new Error(msg);
  return msg;
}

let binPath;
// binary returns the server binary: HEXTRACK_BIN, or one built once from
// the working tree into test-artifacts/bin (go's cache keeps this quick).
export function binary() {
  if (process.env.HEXTRACK_BIN) return process.env.HEXTRACK_BIN;
  if (!binPath) {
    const out = path.join(repoRoot, 'test-artifacts', 'bin', 'hextrack');
    mkdirSync(path.dirname(out), { recursive: true });
    execFileSync('go', ['build', '-o', out, './cmd/hextrack'], { cwd: repoRoot, stdio: 'inherit' });
    binPath = out;
  }
  return binPath;
}

let drivesimPath;
// drivesimBinary returns drivesim: HEXTRACK_DRIVESIM_BIN, or one built once
// from the working tree into test-artifacts/bin.
export function drivesimBinary() {
  if (process.env.HEXTRACK_DRIVESIM_BIN) return process.env.HEXTRACK_DRIVESIM_BIN;
  if (!drivesimPath) {
    const out = path.join(repoRoot, 'test-artifacts', 'bin', 'drivesim');
    mkdirSync(path.dirname(out), { recursive: true });
    execFileSync('go', ['build', '-o', out, './cmd/drivesim'], { cwd: repoRoot, stdio: 'inherit' });
    drivesimPath = out;
  }
  return drivesimPath;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// dataDirs are the servers' data dirs, removed when the test process exits.
const dataDirs = [];
process.once('exit', () => {
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
});

// Server is one running hextrack process.
export class Server {
  constructor(opts = {}) {
    this.opts = opts;
    this.port = opts.port;
    this.logs = [];
    // The server's data dir (archive, dev secret): its own, kept across a
    // restart of this Server, removed when the test process exits.
    this.dataDir = mkdtempSync(path.join(os.tmpdir(), 'hextrack-webtest-'));
    dataDirs.push(this.dataDir);
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  async start() {
    if (!this.port) this.port = await freePort();
    const env = {
      ...process.env,
      HEXTRACK_ADDR: `127.0.0.1:${this.port}`,
      HEXTRACK_LOG_LEVEL: 'warn',
      // A fixed secret keeps tokens valid across a restart.
      HEXTRACK_JWT_SECRET: this.opts.secret || 'browser-tests-only-0123456789abcdef0123456789',
      HEXTRACK_DRAIN_WINDOW: '1s',
      HEXTRACK_DATA_DIR: this.dataDir,
      ...(this.opts.env || {}),
    };
    // secret: null is make run's way: no secret given, dev mode keeps one
    // in the data dir (so tokens survive a restart of this Server).
    if (this.opts.secret === null) delete env.HEXTRACK_JWT_SECRET;
    if (this.opts.redisURL) {
      env.HEXTRACK_REDIS_URL = this.opts.redisURL;
      env.HEXTRACK_DEV = this.opts.dev === false ? '0' : '1';
      env.HEXTRACK_KEY_PREFIX = this.opts.prefix || '';
    } else {
      delete env.HEXTRACK_REDIS_URL;
    }
    // args: the server's command line (e.g. make run's, from
    // scripts/run.sh --print-commands); none by default.
    this.proc = spawn(binary(), this.opts.args || [], { env, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b) => {
      this.logs.push(b.toString());
      if (this.logs.length > 200) this.logs.shift();
    };
    this.proc.stdout.on('data', keep);
    this.proc.stderr.on('data', keep);
    this.exited = new Promise((r) => this.proc.on('exit', r));
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`server exited: ${this.logs.join('')}`);
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) return this;
      } catch { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server did not start: ${this.logs.join('')}`);
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(t);
  }

  // api calls the server's JSON API.
  async api(method, p, { token, body, headers } = {}) {
    const h = { Accept: 'application/json', ...(headers || {}) };
    if (token) h.Authorization = `Bearer ${token}`;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const r = await fetch(this.url + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = text; }
    return { status: r.status, body: json, headers: r.headers };
  }

  async token(role, sub, trip) {
    const r = await this.api('POST', '/v1/dev/token', { body: { role, sub, ttl: '1h', trip } });
    if (r.status !== 200) throw new Error(`dev token: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.token;
  }
}

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS.filter((f) => f !== '--headless') });
}

// watch records what a page does wrong: uncaught errors, console errors
// (including CSP violations and failed loads) and any request that leaves
// the server under test.
export function watch(page, server) {
  const w = { errors: [], external: [], allow: [] };
  page.on('pageerror', (e) => w.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Failed loads are reported below with their URL instead.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) w.errors.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) w.errors.push(`HTTP ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  page.on('requestfailed', (r) => w.errors.push(`failed ${r.request ? '' : ''}${r.method()} ${new URL(r.url()).pathname}: ${r.failure() && r.failure().errorText}`));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol === 'data:' || u.protocol === 'blob:') return;
    if (u.host !== `127.0.0.1:${server.port}`) w.external.push(r.url());
  });
  // problems returns the errors not matched by an allowed pattern.
  w.problems = () => w.errors.filter((e) => !w.allow.some((re) => re.test(e)));
  return w;
}

export async function shot(page, name) {
  mkdirSync(shotsDir, { recursive: true });
  const file = path.join(shotsDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

export async function until(fn, { timeout = 15000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

// drive posts pings for a driver along a short straight line near p.
export async function ping(server, token, id, p, seq, heading = 90) {
  return server.api('POST', `/v1/drivers/${id}/locations`, { token, body: { lat: p.lat, lng: p.lng, ts: new Date().toISOString(), seq, heading, speed: 8 } });
}

// pingOK sends ping and fails, naming the server's answer, unless it is
// accepted.
export async function pingOK(server, token, id, p, seq, heading = 90) {
  const r = await ping(server, token, id, p, seq, heading);
  if (r.status !== 200) throw new Error(`ping ${seq} at ${p.lat},${p.lng}: ${r.status} ${JSON.stringify(r.body)}`);
  return r;
}

// center returns a point on the server's road map (its first road), or a
// default when the server has no road layer.
export async function center(server) {
  const r = await server.api('GET', '/v1/map/roads.geojson');
  if (r.status === 200 && r.body && r.body.features && r.body.features.length) {
    const f = r.body.features[Math.floor(r.body.features.length / 2)];
    const c = f.geometry.coordinates[0];
    return { lat: c[1], lng: c[0] };
  }
  return { lat: 41.1579, lng: -8.6291 };
}
