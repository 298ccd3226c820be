#!/usr/bin/env bash
# `make dev`: the whole stack on this machine. Installs what is missing, starts the control plane
# and services, builds and starts the operator and the storefront runtime, applies examples/, and
# prints what runs where. Ctrl-C stops all of it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${EMPORIUM_CACHE_DIR:-$HOME/.cache/emporium}/target}
state="$root/.state"

log() { printf '[dev] %s\n' "$*" >&2; }

children=()
cleanup() {
  trap - EXIT INT TERM
  log "stopping"
  for pid in "${children[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/stack.sh stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building the operator and the storefront runtime"
cargo build --locked -q -p emporium-operator -p emporium-storefront --bins

scripts/stack.sh start
set -a
# shellcheck disable=SC1091
source "$state/env"
set +a
kubectl=.bin/kubectl
bin="$CARGO_TARGET_DIR/debug"

# The operator, then the API it serves.
if compgen -G "crds/*.yaml" >/dev/null; then
  "$kubectl" apply --server-side -f crds/ >/dev/null
  "$kubectl" wait --for=condition=Established crd --all --timeout=60s >/dev/null
fi
operator_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
EMPORIUM_LOG_FORMAT=text "$bin/emporium-operator" --http-addr "127.0.0.1:$operator_port" \
  >"$state/logs/operator.log" 2>&1 &
children+=($!)

store_port=${EMPORIUM_DEV_PORT:-8000}
EMPORIUM_LOG_FORMAT=text "$bin/emporium-storefront" --listen "127.0.0.1:$store_port" \
  >"$state/logs/storefront.log" 2>&1 &
children+=($!)

if compgen -G "examples/*.yaml" >/dev/null; then
  "$kubectl" apply --server-side -f examples/ >/dev/null && log "applied examples/"
fi

cat <<EOF

Emporium is running. Ctrl-C stops everything.

  kubeconfig     export KUBECONFIG=$KUBECONFIG
  API server     $KUBE_SERVER   (try: $kubectl get --raw /readyz)
  storefronts    $kubectl get storefronts
  operator       http://127.0.0.1:$operator_port/healthz   logs: .state/logs/operator.log
  storefront     http://127.0.0.1:$store_port/healthz   logs: .state/logs/storefront.log
  services       scripts/stack.sh status
EOF

# Stay up until Ctrl-C, or until the operator or the runtime exits.
wait -n "${children[@]}"
log "a component exited; see .state/logs/"
exit 1
