# hextrack — the targets the README names.
GO      ?= go
BIN     := bin
FUZZTIME ?= 10s

.PHONY: run test test-faults test-security bench lint web fuzz build clean

## run: server on an embedded Redis + simulated drivers + payment gateway simulator (:8090) + web pages (:8080)
run: build
	./scripts/run.sh

## build: both binaries into ./bin
build: web-if-missing
	$(GO) build -o $(BIN)/hextrack ./cmd/hextrack
	@if [ -d cmd/drivesim ] && ls cmd/drivesim/*.go >/dev/null 2>&1; then $(GO) build -o $(BIN)/drivesim ./cmd/drivesim; fi

## test: installs the npm packages the tests need (or names the missing tool), then vet, unit + integration + end-to-end tests (real Redis), short fuzz runs, browser tests; lists every skipped test and why
test:
	GO=$(GO) FUZZTIME=5s ./scripts/test.sh

## test-faults: the fault suite (real Redis Cluster, nodes, nginx; needs redis-server and nginx)
test-faults:
	./scripts/test-faults.sh

## fuzz: every fuzz target for FUZZTIME each
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

## bench: end-to-end scenarios vs same-run references → table + bench/results.json (~12 min; not part of test)
bench:
	./scripts/bench.sh $(BENCH_ARGS)

## bench-micro: the Go micro-benchmarks of every package
bench-micro:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

## test-security: the flood and reconnect-storm tests (alone: they measure latency and open 5,000 streams)
test-security:
	HEXTRACK_LOAD_TESTS=1 $(GO) test -count=1 -timeout 5m -run '^(TestPingFlood|TestReconnectStorm)$$' -v ./api/

## lint: gofmt + go vet + the house's limits (scripts/housecheck) + go.mod/go.sum tidy + golangci-lint (the pinned version, installed into $(go env GOPATH)/bin when missing)
GOLANGCI_VERSION := v2.15.0
GOLANGCI := $(shell $(GO) env GOPATH)/bin/golangci-lint
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run ./scripts/housecheck
	@$(GO) mod tidy -diff >/dev/null || (echo "go.mod/go.sum are not tidy; run 'go mod tidy' and commit. The changes it would make:"; $(GO) mod tidy -diff; exit 1)
	@if ! $(GOLANGCI) version 2>/dev/null | grep -q "version $(GOLANGCI_VERSION:v%=%) "; then \
		echo "installing golangci-lint $(GOLANGCI_VERSION)"; \
		GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION); fi
	$(GOLANGCI) run ./...

## web: build the web bundle into web/dist
web:
	@if [ -f web/package.json ]; then cd web && npm ci --no-audit --no-fund && npm run build; else echo "no web/package.json"; fi

web-if-missing:
	@if [ -f web/package.json ] && [ ! -f web/dist/index.html ]; then $(MAKE) web; fi

clean:
	rm -rf $(BIN) web/dist/*.js web/dist/*.css
