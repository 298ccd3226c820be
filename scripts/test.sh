#!/usr/bin/env bash
# `make test`: installs what is missing, starts the stack, runs every test (lint, unit,
# integration, end to end), and stops everything it started, also on failure or Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${EMPORIUM_CACHE_DIR:-$HOME/.cache/emporium}/target}

step() { printf '\n==> %s\n' "$*"; }
t0=$SECONDS

step "tools"
scripts/install-tools.sh

step "lint: rustfmt, clippy (warnings are errors)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build binaries and tests"
# The end-to-end tests run the real operator and runtime binaries: build them first so a test
# never runs a stale one.
cargo build --workspace --locked --bins
cargo test --workspace --locked --no-run

step "control plane: go vet"
(cd tests/controlplane && go vet ./...)

if [ -d charts/emporium ]; then
  step "helm lint"
  .bin/helm lint charts/emporium
fi

step "start the stack"
trap 'scripts/stack.sh stop' EXIT
trap 'exit 130' INT TERM
scripts/stack.sh start

step "cargo test (unit, integration, end to end)"
cargo test --workspace --locked -- --test-threads="${EMPORIUM_TEST_THREADS:-4}"

step "schemathesis against the runtime's /openapi.json (no 5xx, responses as documented)"
SCHEMATHESIS_EXAMPLES=${SCHEMATHESIS_EXAMPLES:-25} scripts/reliability.sh schemathesis

step "passed in $((SECONDS - t0))s"
