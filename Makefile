# linkerd-go: one Makefile that fans out over the workspace's modules.
#
#   make test       everything CI checks (the README's test command)
#   make help       every target
#
# Each module is built, vetted and tested on its own (GOWORK=off), the way it is
# released. Developer tools (buf, protoc plugins, staticcheck) are pinned in
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

GOTOOL := GOWORK=off go tool -modfile=$(ROOT)/devtools/go.mod

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  modules: $(MODULES)"
	@echo "  cache:   $(CACHE_DIR)"

.PHONY: test
test: check-generated lint build test-unit ## Everything CI checks: generated code, lint, build and tests of every module.
	@echo "test: all checks passed"

.PHONY: generate
generate: ## Regenerate the Go code of api/ from its protos.
	@echo "generate: buf generate in api/"
	cd $(ROOT)/api && find . -name '*.pb.go' -delete && $(GOTOOL) buf generate

.PHONY: check-generated
check-generated: ## Fail if the committed generated code differs from what `make generate` writes.
	@$(ROOT)/scripts/check-generated.sh

.PHONY: build
build: ## Build every module on its own (GOWORK=off).
	@for m in $(MODULES); do \
		echo "build: $$m"; \
		(cd $(ROOT)/$$m && GOWORK=off go build ./...); \
	done

.PHONY: test-unit
test-unit: ## Run every module's Go tests on its own, with the race detector.
	@for m in $(MODULES); do \
		echo "test-unit: $$m"; \
		(cd $(ROOT)/$$m && GOWORK=off go test -race ./...); \
	done

.PHONY: lint
lint: lint-go lint-proto ## All linters.

.PHONY: lint-go
lint-go: ## gofmt, go vet, staticcheck and go.mod tidiness for every module.
	@for m in $(MODULES); do \
		echo "lint: $$m"; \
		cd $(ROOT)/$$m; \
		unformatted=$$(gofmt -l .); \
		if [ -n "$$unformatted" ]; then echo "not gofmt-clean (run gofmt -w):"; echo "$$unformatted"; exit 1; fi; \
		GOWORK=off go vet ./...; \
		$(GOTOOL) staticcheck ./...; \
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
