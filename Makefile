# linkerd-go: one Makefile that fans out over the workspace's modules.
#
#   make test       everything CI checks (the README's test command)
#   make help       every target
#
# Each module is built, vetted and tested on its own (GOWORK=off), the way it is
# released, and in the workspace (go.work), the way a contributor works on it.
# Developer tools (buf, protoc plugins, staticcheck) are pinned in
# devtools/go.mod and run through `go tool`; nothing is installed globally.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

# The modules, in go.work order. GOWORK is set explicitly so that a GOWORK=off
# in the environment cannot make the list empty (and every check vacuous).
MODULES := $(shell cd $(ROOT) && GOWORK=$(ROOT)/go.work go work edit -json | sed -n 's|.*"DiskPath": "\./\(.*\)".*|\1|p')
ifeq ($(strip $(MODULES)),)
$(error no modules found in $(ROOT)/go.work)
endif

# Everything this project caches lives here, outside the checkout, so that a
# fresh clone on the same machine (CI) starts warm.
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/linkerd-go
export GOCACHE := $(CACHE_DIR)/go-build
export GOMODCACHE := $(CACHE_DIR)/go-mod
export BUF_CACHE_DIR := $(CACHE_DIR)/buf
# Read by the tools modules: built Kubernetes binaries, dev cluster state.
export LINKERD_GO_CACHE := $(CACHE_DIR)

# Build tags of the test tiers above unit tests (see docs/testing.md):
#   integration  tier 2: real parts on this machine (kube-apiserver, network namespaces); root
#   e2e          tier 3: the real single-node cluster
# Their results are never taken from the test cache (-count=1): they depend on
# binaries and host state the go command does not track.
TEST_TAGS := integration,e2e
DEV := cd $(ROOT)/tools/dev && GOWORK=off go run ./cmd/dev

GOTOOL := GOWORK=off go tool -modfile=$(ROOT)/devtools/go.mod

# Workspace mode, whatever GOWORK the environment has: the workspace reads more
# of the module graph than each module alone (see go.work), so it can fail to
# build when every module builds on its own.
WORKSPACE := GOWORK=$(ROOT)/go.work

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  modules: $(MODULES)"
	@echo "  cache:   $(CACHE_DIR)"

.PHONY: test
test: check-generated lint build test-unit test-integration test-e2e ## Everything CI checks: generated code, lint, build and every test tier.
	@echo "test: all checks passed"

.PHONY: generate
generate: ## Regenerate the Go code of api/ from its protos.
	@echo "generate: buf generate in api/"
	cd $(ROOT)/api && find . -name '*.pb.go' -delete && $(GOTOOL) buf generate

.PHONY: check-generated
check-generated: ## Fail if the committed generated code differs from what `make generate` writes.
	@$(ROOT)/scripts/check-generated.sh

.PHONY: build
build: ## Build every module on its own (GOWORK=off) and in the workspace.
	@for m in $(MODULES); do \
		echo "build: $$m"; \
		(cd $(ROOT)/$$m && GOWORK=off go build ./... && $(WORKSPACE) go build ./...); \
	done

.PHONY: test-unit
# In the workspace without the race detector: it is the same code against the
# workspace's dependency versions, and a second race build of everything would
# double the time for little more.
test-unit: ## Run every module's Go tests on its own (with the race detector) and in the workspace.
	@for m in $(MODULES); do \
		echo "test-unit: $$m"; \
		(cd $(ROOT)/$$m && GOWORK=off go test -race ./... && $(WORKSPACE) go test ./...); \
	done

.PHONY: test-integration
test-integration: k8s-bins ## Tier 2: every module's tests against real parts (kube-apiserver, netns). Needs root.
	@for m in $(MODULES); do \
		echo "test-integration: $$m"; \
		(cd $(ROOT)/$$m && GOWORK=off go test -count=1 -race -tags integration ./...); \
	done

.PHONY: test-e2e
# Only the tools modules have tier-3 tests: the dev cluster's own (tools/dev)
# and the end-to-end suite (tools/suites).
E2E_MODULES := tools/dev tools/suites

test-e2e: k8s-bins ## Tier 3: tests on the real single-node cluster (brought up and torn down by each package, one package at a time). Needs root.
	@for m in $(E2E_MODULES); do \
		echo "test-e2e: $$m"; \
		(cd $(ROOT)/$$m && GOWORK=off go test -count=1 -p 1 -tags e2e -timeout 45m ./...); \
	done

.PHONY: k8s-bins
k8s-bins: ## Build (or find in the cache) the pinned Kubernetes, containerd, CNI, helm and crane binaries.
	@$(DEV) k8s-bins

.PHONY: cluster-up
cluster-up: k8s-bins ## Bring up the single-node dev cluster (idempotent). Needs root.
	@$(DEV) cluster up

.PHONY: cluster-down
cluster-down: ## Tear the dev cluster down, removing everything it created on the host.
	@$(DEV) cluster down

.PHONY: demo
demo: k8s-bins ## The first thing to run: dev cluster up, images built and loaded, the mesh installed, the demo app deployed, live stats. Needs root.
	@$(DEV) demo

# Images and charts (deploy/). Image tarballs are build outputs, written to out/.
IMAGES_DIR ?= $(ROOT)/out/images

.PHONY: images
images: ## Build one reproducible OCI image tarball per component (linux/amd64 and linux/arm64) into out/images.
	@$(DEV) images --out $(IMAGES_DIR)

.PHONY: charts-lint
charts-lint: k8s-bins ## helm lint every chart with each value set, and check that values.schema.json refuses bad values.
	@$(ROOT)/deploy/scripts/charts-lint.sh "$$($(DEV) k8s-bins --print-dir)/helm"

# Benchmarks (tier 4): reports, not pass/fail. See docs/testing.md.
.PHONY: bench-proxy
bench-proxy: k8s-bins ## Data-plane benchmark: direct vs our proxy pair vs an nginx pair; report into tools/suites/bench/results/. Needs root.
	@cd $(ROOT)/tools/suites && GOWORK=off go run ./cmd/bench proxy --out $(ROOT)/tools/suites/bench/results

.PHONY: lint
lint: lint-go lint-proto ## All linters.

.PHONY: lint-go
lint-go: ## gofmt, go vet (alone and in the workspace), staticcheck and go.mod tidiness for every module.
	@for m in $(MODULES); do \
		echo "lint: $$m"; \
		cd $(ROOT)/$$m; \
		unformatted=$$(gofmt -l .); \
		if [ -n "$$unformatted" ]; then echo "not gofmt-clean (run gofmt -w):"; echo "$$unformatted"; exit 1; fi; \
		GOWORK=off go vet -tags $(TEST_TAGS) ./...; \
		$(WORKSPACE) go vet -tags $(TEST_TAGS) ./...; \
		$(GOTOOL) staticcheck -tags $(TEST_TAGS) ./...; \
		GOWORK=off go mod tidy -diff || { echo "$$m/go.mod is not tidy (run go mod tidy)"; exit 1; }; \
	done

.PHONY: lint-proto
lint-proto: breaking ## buf lint and buf format of the protos, and the breaking check.
	@echo "lint: api/proto"
	@cd $(ROOT)/api && $(GOTOOL) buf lint && $(GOTOOL) buf format --diff --exit-code

.PHONY: breaking
breaking: ## Fail on changes to the protos that break the v1 contracts (see scripts/buf-breaking.sh).
	@$(ROOT)/scripts/buf-breaking.sh

.PHONY: fmt
fmt: ## Format Go and proto sources in place.
	@for m in $(MODULES); do gofmt -w $(ROOT)/$$m; done
	cd $(ROOT)/api && $(GOTOOL) buf format -w

.PHONY: tidy
tidy: ## go mod tidy in every module.
	@for m in $(MODULES); do (cd $(ROOT)/$$m && GOWORK=off go mod tidy); done
