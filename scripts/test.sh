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

# The real node (docs/real-node.md) runs by default where it can: as root, when no other checkout
# on this machine runs it. EMPORIUM_REAL_NODE=0 leaves it out; =1 insists (and fails if it cannot).
if [ -z "${EMPORIUM_REAL_NODE:-}" ]; then
  if scripts/node.sh available; then EMPORIUM_REAL_NODE=1; else
    EMPORIUM_REAL_NODE=0
    printf 'note: no real node this run (needs root, and none running for another checkout); its tests are not run\n'
  fi
fi
export EMPORIUM_REAL_NODE

# The node's Go builds (containerd, kubelet, Traefik, ...; cached by version) run beside the Rust
# build instead of after it: on a cold machine that saves most of their time.
node_install_pid=
if [ "$EMPORIUM_REAL_NODE" = 1 ]; then
  mkdir -p .state
  # Its own process group, so a failure before the wait below (say, clippy) stops its builds too.
  setsid scripts/install-node.sh >.state/install-node.log 2>&1 &
  node_install_pid=$!
  trap 'kill -- "-$node_install_pid" 2>/dev/null || true' EXIT
fi

step "lint: rustfmt, clippy (warnings are errors)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build binaries and tests"
# The end-to-end tests run the real operator and runtime binaries: build them first so a test
# never runs a stale one.
cargo build --workspace --locked --bins
cargo test --workspace --locked --no-run

step "images of the operator and the runtime (scripts/images.sh, no Docker engine)"
scripts/images.sh

step "control plane: go vet"
(cd tests/controlplane && go vet ./...)

if [ -d charts/emporium ]; then
  step "helm lint"
  .bin/helm lint charts/emporium
fi

if [ -n "$node_install_pid" ]; then
  step "the real node's tools (built in the background since the start)"
  if ! wait "$node_install_pid"; then cat .state/install-node.log; exit 1; fi
  tail -n 1 .state/install-node.log
fi

step "start the stack$([ "$EMPORIUM_REAL_NODE" = 1 ] && echo ' and the real node')"
# stack.sh stop stops the node first; the explicit node.sh stop covers a Ctrl-C while the node
# was still starting.
trap 'scripts/stack.sh stop; if [ "$EMPORIUM_REAL_NODE" = 1 ]; then scripts/node.sh stop; fi' EXIT
trap 'exit 130' INT TERM
scripts/stack.sh start

step "cargo test (unit, integration, end to end)"
cargo test --workspace --locked -- --test-threads="${EMPORIUM_TEST_THREADS:-4}"

step "schemathesis against the runtime's /openapi.json (no 5xx, responses as documented)"
SCHEMATHESIS_EXAMPLES=${SCHEMATHESIS_EXAMPLES:-25} scripts/reliability.sh schemathesis

step "passed in $((SECONDS - t0))s"
