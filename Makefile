# gopyro — run "make help" for the targets.
GO        ?= go
BIN       := bin
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
STATICCHECK_VERSION := v0.8.2
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: help build test test-race test-bench fuzz bench perf lint depcheck demo ci clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## Build the gopyro binary into bin/
	$(GO) build -buildvcs=auto -o $(BIN)/gopyro ./cmd/gopyro

test: test-race test-bench ## Run every test with the race detector, and each benchmark once

test-race:
	$(GO) test -race -count=1 ./...

test-bench:
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

fuzz: ## Run each fuzz test for FUZZTIME (default 10s)
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) .
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./internal/wire
	$(GO) test -run='^$$' -fuzz='^FuzzParseReply$$' -fuzztime=$(FUZZTIME) ./internal/wire
	$(GO) test -run='^$$' -fuzz='^FuzzGuardConn$$' -fuzztime=$(FUZZTIME) ./internal/wire
	$(GO) test -run='^$$' -fuzz='^FuzzServeConn$$' -fuzztime=$(FUZZTIME) ./daemon
	$(GO) test -run='^$$' -fuzz='^FuzzFormats$$' -fuzztime=$(FUZZTIME) ./internal/pyro
	$(GO) test -run='^$$' -fuzz='^FuzzFrame$$' -fuzztime=$(FUZZTIME) ./internal/pyro

bench: ## Run the benchmarks (BENCHTIME per case)
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

perf: ## gopyro bench: medians of 5 runs against raw TCP, raw rpcx, net/rpc
	$(GO) run ./cmd/gopyro bench --duration 1s --runs 5

lint: ## gofmt, go vet, go mod tidy -diff, staticcheck (installed if missing)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	@[ -x "$(STATICCHECK)" ] || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...

depcheck: ## Prove the package import rules
	./scripts/depcheck.sh

demo: ## Run the chain example end to end (SCENARIO=greeting|chain|shop|classic|gpu|interop)
	$(GO) run ./cmd/gopyro demo $(or $(SCENARIO),chain)

ci: lint depcheck test ## What .ci/run runs

clean: ## Remove build outputs
	rm -rf $(BIN)
