#!/usr/bin/env bash
# Browser tests of the web pages (Playwright + Debian's Chromium), when the
# web package exists. With SKIPPED_FILE set, the skipped tests are appended
# to it (grouped by reason) instead of passing unnoticed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f web/package.json ] || ! grep -q '"test"' web/package.json; then
  echo "webtest: no web tests yet"
  exit 0
fi
command -v npm >/dev/null || { echo "webtest: npm is needed (install Node.js 18+)" >&2; exit 1; }
[ -d web/node_modules ] || (cd web && npm ci --no-audit --no-fund)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A server binary of this run's own: two runs at once never share one. It
# embeds web/dist, so the bundle is built first (npm test builds it again).
if [ -z "${HEXTRACK_BIN:-}" ]; then
  (cd web && npm run --silent build)
  go build -o "$work/hextrack" ./cmd/hextrack
  export HEXTRACK_BIN=$work/hextrack
fi
cd web
NODE_OPTIONS="${NODE_OPTIONS:-} --test-reporter=spec --test-reporter-destination=stdout --test-reporter=tap --test-reporter-destination=$work/web.tap" npm test
if [ -n "${SKIPPED_FILE:-}" ]; then
  # TAP: "ok 3 - name # SKIP reason"
  sed -n 's/^ *ok [0-9]* - \(.*\) # SKIP \(.*\)$/\2\t\1/p' "$work/web.tap" |
    awk -F'\t' '{n[$1]++; if (!($1 in first)) first[$1]=$2}
      END {for (r in n) printf "browser: %d tests (\"%s\"%s): %s\n", n[r], first[r], (n[r]>1?", ...":""), r}' >>"$SKIPPED_FILE"
fi
