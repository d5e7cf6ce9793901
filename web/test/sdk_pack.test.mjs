// `npm pack` of @hextrack/client (web/sdk) makes a package with its code,
// type declarations and README, and nothing else (no tests, no
// node_modules); the package has no runtime dependencies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { webDir } from './harness.mjs';

const sdkDir = path.join(webDir, 'sdk');

test('npm pack lists the code, the declarations and the README', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: sdkDir, encoding: 'utf8' });
  const [pkg] = JSON.parse(out);
  assert.equal(pkg.name, '@hextrack/client');
  const files = pkg.files.map((f) => f.path).sort();
  for (const f of ['README.md', 'index.d.ts', 'index.js', 'package.json', 'src/driver.js', 'src/errors.js', 'src/sse.js', 'src/stream.js', 'src/trip.js']) {
    assert.ok(files.includes(f), `${f} in ${files}`);
  }
  assert.deepEqual(files.filter((f) => !/^(README\.md|index\.d\.ts|index\.js|package\.json|src\/[a-z]+\.js)$/.test(f)), [], 'nothing else');
});

test('the package is ESM, typed, and has no runtime dependencies', async () => {
  const pkg = JSON.parse(readFileSync(path.join(sdkDir, 'package.json'), 'utf8'));
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.types, './index.d.ts');
  assert.equal(pkg.exports['.'].types, './index.d.ts');
  assert.deepEqual(Object.keys(pkg.dependencies || {}), []);
  // Every name the declarations export is exported by the code.
  const mod = await import(path.join(sdkDir, 'index.js'));
  const dts = readFileSync(path.join(sdkDir, 'index.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export (?:declare )?(?:function|class|const) (\w+)/gm)].map((m) => m[1]);
  assert.ok(declared.length > 10);
  for (const name of declared) assert.ok(name in mod, `${name} is declared but not exported`);
});
