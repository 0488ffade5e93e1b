# Sluice. `make run` and `make test` set up everything they need on a fresh
# Debian machine (as root): Go, MariaDB, and the Go modules.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO_VERSION  := 1.26.8
GO          ?= go
export GOTOOLCHAIN := local
export GOFLAGS     := -buildvcs=false
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DATA_DIR    ?= .sluice
export SLUICE_DATA_DIR := $(DATA_DIR)
TEST_TIMEOUT ?= 18m

.PHONY: help run test test-unit test-integration build go mysql lint fmt bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

go: ## install Go $(GO_VERSION) if missing (from the Go module proxy)
	@GO_VERSION=$(GO_VERSION) deploy/dev/ensure-go.sh >/dev/null

mysql: ## make sure MySQL answers on 127.0.0.1:3306 (starts a private MariaDB under $(DATA_DIR)/mysql if not)
	@deploy/dev/ensure-mysql.sh

build: go ## build bin/sluice and bin/sluice-worker (the worker alone, without the embedded server)
	$(eval GO := $(shell GO_VERSION=$(GO_VERSION) deploy/dev/ensure-go.sh))
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/sluice ./cmd/sluice
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/sluice-worker ./cmd/sluice-worker

run: build mysql ## run the whole platform on this machine (sluice dev)
	./bin/sluice dev --data-dir $(DATA_DIR)

test: go mysql ## run every test (unit + integration against real Temporal, Kafka protocol, MariaDB)
	$(eval GO := $(shell GO_VERSION=$(GO_VERSION) deploy/dev/ensure-go.sh))
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

test-unit: go mysql ## tests that do not link the Temporal server
	$(eval GO := $(shell GO_VERSION=$(GO_VERSION) deploy/dev/ensure-go.sh))
	$(GO) test -count=1 -race $$($(GO) list ./... | grep -v -e /tests -e /internal/devstack -e /internal/bench -e /cmd/)

test-integration: go mysql ## end-to-end tests in tests/
	$(eval GO := $(shell GO_VERSION=$(GO_VERSION) deploy/dev/ensure-go.sh))
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./tests/

lint: go ## go vet, staticcheck, workflowcheck
	$(eval GO := $(shell GO_VERSION=$(GO_VERSION) deploy/dev/ensure-go.sh))
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) run go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0 ./workflows/...

fmt: go ## gofmt the tree
	$(eval GO := $(shell GO_VERSION=$(GO_VERSION) deploy/dev/ensure-go.sh))
	$(dir $(GO))gofmt -l -w $$(git ls-files '*.go')

bench: build ## measure ceiling vs end-to-end throughput, freshness and worker RSS (private MariaDB; BENCH_ARGS="--events N --mysql-dsn ...")
	./bin/sluice bench $(BENCH_ARGS)

clean: ## remove build output (keeps $(DATA_DIR))
	rm -rf bin
