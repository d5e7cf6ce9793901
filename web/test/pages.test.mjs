// Every page: security headers, loads without console errors or requests
// leaving the server, labelled controls, and a screenshot on a desktop and
// a phone viewport.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, watch, shot, skipReason } from './harness.mjs';

const skip = skipReason();
let server;
let browser;

before(async () => {
  if (skip) return;
  server = await new Server().start();
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

const PAGES = [
  { path: '/', name: 'rider', ready: '#nearby-text' },
  { path: '/ops', name: 'ops', ready: '#c-inview' },
  { path: '/driver', name: 'driver', ready: '#driver-id' },
];

test('pages carry the security headers', { skip }, async () => {
  for (const p of [...PAGES.map((x) => x.path), '/assets/rider.js']) {
    const r = await fetch(server.url + p);
    assert.equal(r.status, 200, p);
    const csp = r.headers.get('content-security-policy') || '';
    for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"]) {
      assert.ok(csp.includes(d), `${p}: CSP lacks ${d}: ${csp}`);
    }
    assert.ok(!/unsafe-inline|unsafe-eval/.test(csp), `${p}: CSP allows unsafe sources: ${csp}`);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', p);
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer', p);
    const body = await r.text();
    if (p.endsWith('.js')) continue;
    assert.doesNotMatch(body, /<script(?![^>]*\bsrc=)[^>]*>/i, `${p} has an inline script`);
    assert.doesNotMatch(body, /<style|\sstyle=/i, `${p} has inline styles`);
  }
});

for (const vp of [{ name: 'desktop', width: 1280, height: 800 }, { name: 'phone', width: 390, height: 844, isMobile: true, hasTouch: true }]) {
  for (const pg of PAGES) {
    test(`${pg.name} page loads cleanly on ${vp.name}`, { skip }, async () => {
      const ctx = await browser.newContext({ viewport: { width: vp.width, height: vp.height }, isMobile: !!vp.isMobile, hasTouch: !!vp.hasTouch });
      const page = await ctx.newPage();
      const w = watch(page, server);
      try {
        await page.goto(server.url + pg.path);
        await page.waitForSelector(pg.ready);
        await page.waitForSelector('.leaflet-container');
        await page.waitForTimeout(1500);
        // Every visible form control has an accessible label.
        const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, button, textarea')]
          .filter((e) => e.offsetParent !== null && e.type !== 'hidden')
          .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.textContent || '').trim() && !e.title)
          .map((e) => e.outerHTML.slice(0, 80)));
        assert.deepEqual(unlabelled, [], 'unlabelled controls');
        // The first control is reachable by keyboard.
        await page.keyboard.press('Tab');
        const focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
        assert.ok(focused && focused !== 'BODY', 'Tab moves focus into the page');
        await shot(page, `${pg.name}-${vp.name}`);
        assert.deepEqual(w.external, [], 'requests outside the server');
        assert.deepEqual(w.problems(), [], 'console errors');
      } finally {
        await ctx.close();
      }
    });
  }
}

// attribution returns the text of the map's attribution control once the
// road layer has loaded (map.js then sets data-map-source on the map).
async function attribution(page, source) {
  await page.waitForSelector(`.leaflet-container[data-map-source="${source}"]`);
  return page.textContent('.leaflet-control-attribution');
}

const ROAD = { type: 'FeatureCollection', features: [{ type: 'Feature', properties: { class: 'primary' },
  geometry: { type: 'LineString', coordinates: [[-8.63, 41.15], [-8.62, 41.16]] } }] };

// The OpenStreetMap attribution appears exactly when OSM data is drawn: road
// data the server declares osm, or an OSM tile basemap; never for the
// synthetic city or an empty layer.
test('OpenStreetMap attribution follows the map source', { skip }, async () => {
  const cases = [
    { name: 'osm roads', source: 'osm', want: true },
    { name: 'synthetic roads', source: 'synthetic', want: false },
    { name: 'no roads', source: 'none', want: false },
    { name: 'osm tiles', source: 'none', tileURL: 'https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png', want: true },
    { name: 'other tiles', source: 'synthetic', tileURL: 'https://tiles.example.com/{z}/{x}/{y}.png', want: false },
    { name: 'configured attribution', source: 'synthetic', tileURL: 'https://tiles.example.com/{z}/{x}/{y}.png', tileAttribution: 'Example Tiles', want: false, has: 'Example Tiles' },
  ];
  for (const c of cases) {
    // Every page for the two road sources; the rest on the rider page.
    for (const pg of c.tileURL || c.source === 'none' ? PAGES.slice(0, 1) : PAGES) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await ctx.newPage();
      try {
        await page.route('**/v1/map/roads.geojson', (r) => r.fulfill({ status: 200, contentType: 'application/geo+json',
          headers: { 'X-Map-Source': c.source }, body: JSON.stringify(c.source === 'none' ? { type: 'FeatureCollection', features: [] } : ROAD) }));
        await page.route('**/config.json', (r) => r.fulfill({ status: 200, contentType: 'application/json',
          body: JSON.stringify({ tileURL: c.tileURL || '', tileAttribution: c.tileAttribution || '' }) }));
        // Tiles would leave the machine: answer them with nothing.
        await page.route((u) => !u.host.startsWith('127.0.0.1'), (r) => r.fulfill({ status: 204, body: '' }));
        await page.goto(server.url + pg.path);
        await page.waitForSelector(pg.ready);
        const text = await attribution(page, c.source);
        assert.equal(/OpenStreetMap/.test(text), c.want, `${c.name} on ${pg.name}: attribution "${text}"`);
        if (c.has) assert.ok(text.includes(c.has), `${c.name} on ${pg.name}: attribution "${text}" lacks ${c.has}`);
      } finally {
        await ctx.close();
      }
    }
  }
});

// The real server with the synthetic city: roads drawn, no OSM credit.
test('the synthetic city is drawn without the OpenStreetMap attribution', { skip }, async () => {
  const synth = await new Server({ env: { HEXTRACK_MAP: 'synthetic' } }).start();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const r = await fetch(`${synth.url}/v1/map/roads.geojson`);
    assert.equal(r.headers.get('x-map-source'), 'synthetic');
    assert.ok((await r.json()).features.length > 0, 'synthetic city has roads');
    const page = await ctx.newPage();
    await page.goto(`${synth.url}/`);
    await page.waitForSelector('#nearby-text');
    const text = await attribution(page, 'synthetic');
    assert.match(text, /Leaflet/);
    assert.doesNotMatch(text, /OpenStreetMap/);
  } finally {
    await ctx.close();
    await synth.stop();
  }
});

test('an unknown asset is a 404 and paths cannot escape the bundle', { skip }, async () => {
  for (const p of ['/assets/nope.js', '/assets/../web.go', '/assets/%2e%2e/doc.go']) {
    const r = await fetch(server.url + p);
    assert.equal(r.status, 404, p);
  }
});
