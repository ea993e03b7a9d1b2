# Strait's developer commands. `make test` is what CI runs (.ci/run).
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO        ?= go
FUZZTIME  ?= 20s
BENCH     ?= .
RUN_ARGS  ?=
E2E_FLAGS ?= -count=1 -timeout 15m

# Packages other than the end-to-end tests (which build and run binaries).
unit_pkgs = $(GO) list ./... | grep -v /e2e

.PHONY: test deps fmt-check vet unit e2e build run fuzz bench clean

## test: everything CI checks, in order: deps, formatting, vet, unit tests
## (race detector), end-to-end tests.
test: deps fmt-check vet unit e2e

## deps: install the external programs the tests run (kcat, ...).
deps:
	scripts/test-deps.sh

fmt-check:
	@echo "+ gofmt -l ."
	@files=$$(gofmt -l .); \
	if [ -n "$$files" ]; then \
		echo "gofmt: these files are not formatted (run gofmt -w):"; echo "$$files"; exit 1; \
	fi

vet:
	$(GO) vet ./...

unit:
	@pkgs=$$($(unit_pkgs)); \
	echo "+ $(GO) test -race -count=1" $$pkgs; \
	$(GO) test -race -count=1 $$pkgs

e2e:
	$(GO) test $(E2E_FLAGS) ./e2e/...

build:
	$(GO) build -o bin/strait ./cmd/strait

run:
	$(GO) run ./cmd/strait dev $(RUN_ARGS)

## fuzz: run every Fuzz* target for FUZZTIME each.
fuzz:
	@for pkg in $$($(unit_pkgs)); do \
		list=$$($(GO) test -list '^Fuzz' "$$pkg"); \
		for target in $$(grep '^Fuzz' <<<"$$list" || true); do \
			echo "+ $(GO) test -run '^$$' -fuzz '^$$target\$$' -fuzztime $(FUZZTIME) $$pkg"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done

bench:
	@pkgs=$$($(unit_pkgs)); \
	echo "+ $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem" $$pkgs; \
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $$pkgs

clean:
	rm -rf bin/
