#!/usr/bin/env bash
# Browser tests of the web pages (Playwright + Debian's Chromium), when the
# web package exists.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f web/package.json ] || ! grep -q '"test"' web/package.json; then
  echo "webtest: no web tests yet"
  exit 0
fi
cd web
[ -d node_modules ] || npm ci --no-audit --no-fund
npm test
