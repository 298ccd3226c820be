# Emporium: the two commands a newcomer needs are `make dev` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Build caches live outside the checkout so a fresh clone on the same machine reuses them.
export EMPORIUM_CACHE_DIR ?= $(HOME)/.cache/emporium
export CARGO_TARGET_DIR ?= $(EMPORIUM_CACHE_DIR)/target
export GOFLAGS ?= -buildvcs=false

.PHONY: bench-runtime bench-report
bench-runtime: ## runtime benchmark (wrk, loopback, ~6 min + release build); writes docs/benchmarks.md
	$(MAKE) -C bench runtime

bench-report: ## regenerate docs/benchmarks.md from bench/results/
	$(MAKE) -C bench report

.PHONY: help dev test test-unit tools stack-start stack-stop stack-status lint crds fmt images

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

dev: ## install what is missing, start everything, apply the examples; Ctrl-C stops it all
	scripts/dev.sh

test: ## install what is missing, start the stack, run every test, stop the stack
	scripts/test.sh

test-unit: ## unit tests only, no stack, under a minute
	cargo test --workspace --locked --lib --bins

tools: ## install the pinned tools into .bin/ and .venv/
	scripts/install-tools.sh

images: ## OCI images of the operator and runtime without Docker (EMPORIUM_IMAGE_PROFILE=release for release binaries)
	scripts/images.sh

stack-start: ## start control plane, PostgreSQL, Redis, moto, stripe-mock (writes .state/env)
	scripts/stack.sh start

stack-stop: ## stop everything stack-start started
	scripts/stack.sh stop

stack-status: ## show what runs where
	scripts/stack.sh status

lint: ## rustfmt and clippy, warnings are errors
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

crds: ## regenerate crds/ (and the chart's copy) from the Rust types
	@# Built with the workspace's features, as `make test` builds: `cargo run -p` would rebuild
	@# the AWS SDK crates with the operator's features alone (~15 minutes on 2 cores).
	cargo build --workspace --locked -q --bins
	"$(CARGO_TARGET_DIR)/debug/crdgen" --out crds
	cp crds/*.yaml charts/emporium/crds/

fmt: ## format the Rust code
	cargo fmt --all

reliability: ## start the stack, run the long fault and abuse cases (docs/reliability.md), stop it
	scripts/reliability.sh
