# chatprep — `make help` lists the targets.
#
# Nothing but Go is needed: the Weaviate server, Jaeger and the linters are
# built from the Go module proxy into bin/ the first time (Weaviate and Jaeger
# take a few minutes each) and reused afterwards. `make bench` also needs
# Node 20+ and npm for its Node peer (row 7).

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
WEAVIATE_VERSION := v1.35.2
# Jaeger is pinned in tools/go.mod, a module of its own (its dependencies stay
# out of ours); this is for the messages.
JAEGER_VERSION := v1.76.0
STATICCHECK_VERSION := v0.8.2
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Test binaries run two at a time (2 cores); the first stack start may build Weaviate.
TESTFLAGS ?= -race -timeout 45m

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: build
build: $(BIN)/worker $(BIN)/devstack ## build the worker and the local-stack tool into bin/

$(BIN)/worker: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./worker

$(BIN)/devstack: FORCE
	$(GO) build -o $@ ./cmd/devstack

$(BIN)/weaviate-server:
	@echo "building Weaviate server $(WEAVIATE_VERSION) into bin/ (first run only; takes a few minutes)…"
	GOBIN=$(BIN) $(GO) install github.com/weaviate/weaviate/cmd/weaviate-server@$(WEAVIATE_VERSION)

$(BIN)/jaeger:
	@echo "building Jaeger $(JAEGER_VERSION) into bin/ from tools/go.mod (first run only; takes a few minutes)…"
	cd tools && $(GO) build -o $(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

# Debian's aws-cli 2.9.19 (it speaks SQS's query protocol): the tests run the
# README's `aws sqs` examples with it. Unpacked into bin/ from the machine's
# Debian sources, nothing installed system-wide (tools/awscli.sh).
$(BIN)/aws:
	tools/awscli.sh $(BIN)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: weaviate
weaviate: $(BIN)/weaviate-server ## build the Weaviate server into bin/ (once)

.PHONY: jaeger
jaeger: $(BIN)/jaeger ## build Jaeger, the local tracing backend, into bin/ (once)

.PHONY: awscli
awscli: $(BIN)/aws ## put Debian's aws-cli 2.9.19 into bin/ (once; the tests use it)

# TRACING=1: make up and make demo also run Jaeger and send the worker's traces to it.
TRACING_FLAG := $(if $(filter-out 0 false,$(TRACING)),--tracing)
# WEAVIATE_DEFAULTS=1: make up, make demo and make test run Weaviate with its
# own memtable settings (as Weaviate Cloud does), not the devstack's tuned ones.
# The variable reaches every Weaviate the tests start from the environment
# (internal/testflags; the devstack package's own tests and the bench choose).
DEFAULTS_FLAG := $(if $(filter-out 0 false,$(WEAVIATE_DEFAULTS)),--weaviate-defaults)

.PHONY: demo
demo: build $(BIN)/weaviate-server $(if $(TRACING_FLAG),$(BIN)/jaeger) ## run the main job on the embedded local stack: samples in, contexts out (TRACING=1: and one message's trace)
	$(BIN)/devstack demo $(TRACING_FLAG) $(DEFAULTS_FLAG)

.PHONY: up
up: build $(BIN)/weaviate-server $(if $(TRACING_FLAG),$(BIN)/jaeger) ## start the embedded local stack and print its environment; Ctrl-C stops it (TRACING=1: with Jaeger; WEAVIATE_DEFAULTS=1: Weaviate's own memtable settings)
	$(BIN)/devstack up $(TRACING_FLAG) $(DEFAULTS_FLAG)

.PHONY: lint
lint: $(BIN)/staticcheck ## gofmt, go mod tidy, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

.PHONY: test
test: lint $(BIN)/weaviate-server $(BIN)/jaeger $(BIN)/aws ## lint, then every test with -race, against kumo, a real Weaviate, a real Jaeger and Debian's AWS CLI
	$(GO) test $(TESTFLAGS) ./...

# The bench's Node peer (row 7): its npm dependencies, as package-lock.json
# pins them, in bench/peer/node_modules (git-ignored); needs Node 20+.
PEER := bench/peer
$(PEER)/node_modules/.package-lock.json: $(PEER)/package-lock.json $(PEER)/package.json
	npm ci --prefix $(PEER) --no-audit --no-fund

.PHONY: peer
peer: $(PEER)/node_modules/.package-lock.json ## install the bench's Node peer's dependencies (npm ci, once)

.PHONY: bench
bench: $(BIN)/weaviate-server $(BIN)/jaeger $(PEER)/node_modules/.package-lock.json ## the benchmark's rows on the embedded stack (~40 min); writes bench/results/LATEST.md
	$(GO) test -run '^$$' -bench Chatprep -benchtime 1x -timeout 90m ./bench/ -args -results $(CURDIR)/bench/results

.PHONY: bench-scale
bench-scale: $(BIN)/weaviate-server ## the store's size: the bench's workload at 10 thousand, 100 thousand and 1 million stored messages (~15 min); writes bench/results/SCALE.md
	$(GO) test -run '^$$' -bench Scale -benchtime 1x -timeout 60m ./bench/ -args -results $(CURDIR)/bench/results

.PHONY: chaos
chaos: $(BIN)/weaviate-server ## the fault suite's long form: real workers killed, restarted, starved; prints the table
	$(GO) test -v -count=1 -timeout 60m ./chaos -chaos.full

.PHONY: soak
soak: $(BIN)/weaviate-server ## two workers for 10 minutes at a steady rate; prints goroutines, live heap, RSS, connections
	$(GO) test -v -count=1 -timeout 30m -run TestSoak ./chaos -chaos.soak

.PHONY: fuzz
fuzz: ## fuzz the event decoder for a minute
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./internal/event

.PHONY: clean
clean: ## remove built binaries (keeps bin/weaviate-server and bin/jaeger: they take minutes to build)
	rm -f $(BIN)/worker $(BIN)/devstack

.PHONY: FORCE
FORCE:
