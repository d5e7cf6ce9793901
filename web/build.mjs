// Bundles the three pages into dist/ with esbuild. No inline scripts or
// styles anywhere: every page loads /assets/<page>.js and /assets/<page>.css
// so the server can send a strict Content-Security-Policy.
import * as esbuild from 'esbuild';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, 'dist');
const watch = process.argv.includes('--watch');

// Keep dist/.placeholder (committed so `go build` works on a clean clone).
await rm(path.join(dist, 'assets'), { recursive: true, force: true });
await mkdir(path.join(dist, 'assets'), { recursive: true });
await writeFile(path.join(dist, '.placeholder'),
  'Built web files go here: run `make web` (cd web && npm ci && npm run build).\n');

const opts = {
  entryPoints: {
    rider: 'src/rider/main.js',
    ops: 'src/ops/main.js',
    driver: 'src/driver/main.js',
  },
  bundle: true,
  format: 'esm',
  splitting: true,
  minify: !watch,
  sourcemap: watch ? 'inline' : false,
  target: ['es2020'],
  outdir: path.join(dist, 'assets'),
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.png': 'file', '.svg': 'file' },
  absWorkingDir: root,
  // The pages import the SDK by its package name, as any app would.
  alias: { '@hextrack/client': './sdk/index.js' },
  logLevel: 'info',
  legalComments: 'linked',
};

for (const page of ['index', 'ops', 'driver']) {
  await cp(path.join(root, 'src', `${page}.html`), path.join(dist, `${page}.html`));
}
// Page settings, read by the pages and by the server (for the CSP).
await writeFile(path.join(dist, 'config.json'), JSON.stringify({
  tileURL: process.env.HEXTRACK_TILE_URL || '',
  tileAttribution: process.env.HEXTRACK_TILE_ATTRIBUTION || '',
}) + '\n');
await cp(path.join(root, 'src', 'favicon.svg'), path.join(dist, 'favicon.svg'));

if (watch) {
  const ctx = await esbuild.context(opts);
  await ctx.watch();
} else {
  await esbuild.build(opts);
}
