#!/usr/bin/env bash
# make test's first step: make sure what the tests need is here, installing
# what a clone can install itself (the npm packages of the Node client tests
# and the web pages), and stop with the tool's name when something can't be.
# What is optional (the tests that need it are skipped and listed at the end
# of make test) only gets a note.
set -euo pipefail
cd "$(dirname "$0")/.."

missing() { echo "make test: $1" >&2; exit 1; }

command -v go >/dev/null || missing "go is not on PATH (Go $(sed -n 's/^go //p' go.mod) or newer: https://go.dev/dl/)"
command -v node >/dev/null && command -v npm >/dev/null ||
  missing "node and npm are needed (the Node SSE/WebSocket client tests and the web pages' tests): install Node.js 18+ (apt-get install nodejs npm)"

# Redis: the integration and end-to-end tests run against a real one.
redis_url=${HEXTRACK_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
hostport=${redis_url#*://}; hostport=${hostport#*@}; hostport=${hostport%%/*}
host=${hostport%:*}; port=${hostport##*:}
if ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  missing "no Redis at $host:$port (HEXTRACK_TEST_REDIS_URL): start one, e.g. redis-server --daemonize yes --save '' --appendonly no"
fi

# npm packages: every package-lock.json in the repository, installed when
# node_modules is missing or older than its lock file.
for lock in $(git ls-files '*package-lock.json' 2>/dev/null || find . -name package-lock.json -not -path '*/node_modules/*'); do
  dir=$(dirname "$lock")
  if [ ! -d "$dir/node_modules" ] || [ "$lock" -nt "$dir/node_modules" ]; then
    echo "make test: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) ||
      missing "npm ci failed in $dir (network? a registry mirror in ~/.npmrc?)"
    touch "$dir/node_modules"
  fi
done

# Optional: their tests are skipped, and listed, without them (CI installs them).
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
[ -x "$chromium" ] || echo "make test: note: no Chromium at $chromium (apt-get install chromium): the browser tests will be skipped"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || echo "make test: note: no nginx (apt-get install nginx): the nginx config tests will be skipped"
command -v redis-server >/dev/null || echo "make test: note: no redis-server binary: the Redis Cluster tests will be skipped"
exit 0
