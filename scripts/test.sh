#!/usr/bin/env bash
# make test: prepare what the tests need (scripts/test-deps.sh), then vet,
# gofmt, every Go test with the race detector, short fuzz runs and the
# browser tests; at the end, every test that was skipped and why.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}

./scripts/test-deps.sh

work=$(mktemp -d)
skipped=$work/skipped.txt
: >"$skipped"
report() {
  if [ -s "$skipped" ]; then
    echo
    echo "make test skipped $(wc -l <"$skipped") tests (each says why):"
    sed 's/^/  /' "$skipped"
  fi
}
trap 'rc=$?; report; rm -rf "$work"; [ $rc -eq 0 ] || echo "make test: FAILED (exit $rc)"; exit $rc' EXIT

echo "== go vet"
$GO vet ./...
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed:"; echo "$unformatted"; exit 1
fi
echo "== go test -race"
# Build the summary tool first: a compile error in it must not look like a test failure.
$GO build -o "$work/testsum" ./scripts/testsum
$GO test -json -race -count=1 -timeout 20m ./... | "$work/testsum" -skipped "$skipped"
echo "== fuzz ($FUZZTIME each)"
./scripts/fuzz.sh "$FUZZTIME"
echo "== browser tests"
SKIPPED_FILE=$skipped ./scripts/webtest.sh
echo
echo "make test: PASS"
