#!/usr/bin/env bash
# `make dev`: the whole product on this machine. Installs what is missing, starts the control
# plane and services, builds and starts the operator (PostgreSQL databases, DynamoDB tables on
# moto) and the storefront runtime (tenants from the operator's Secrets), applies the example
# plans and two demo Storefronts, loads a sample catalog into each, and prints how to reach
# everything. Ctrl-C stops all of it.
#
#   EMPORIUM_DEV_PORT=8000   the runtime's port (default 8000, or a free one if taken)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${EMPORIUM_CACHE_DIR:-$HOME/.cache/emporium}/target}
state="$root/.state"

log() { printf '[dev] %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port_free() { python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null; }

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

scripts/install-tools.sh
log "building the operator and the storefront runtime"
cargo build --locked -q -p emporium-operator -p emporium-storefront --bins

scripts/stack.sh start
set -a
# shellcheck disable=SC1091
source "$state/env"
set +a
kubectl=.bin/kubectl
bin="$CARGO_TARGET_DIR/debug"

# The API and the plans, as a platform team installs them.
"$kubectl" apply --server-side -f crds/ >/dev/null
"$kubectl" wait --for=condition=Established crd --all --timeout=60s >/dev/null
"$kubectl" apply --server-side -f examples/plans.yaml >/dev/null

# The operator: databases and roles on the local PostgreSQL, tables on moto. The password key
# derives each tenant role's password; it lives only in .state/ for this run.
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$state/postgres-password-key"
operator_port=$(free_port)
EMPORIUM_LOG_FORMAT=text \
EMPORIUM_POSTGRES_ADMIN_URL="$DATABASE_URL" \
EMPORIUM_POSTGRES_PASSWORD_KEY="$(cat "$state/postgres-password-key")" \
  "$bin/emporium-operator" --http-addr "127.0.0.1:$operator_port" \
    --database-provider postgres --tables-provider dynamodb --queues-provider sqs \
    --postgres-tenant-host 127.0.0.1 --postgres-tenant-port "$PGPORT" \
    --readiness-gate deployment-available \
    >"$state/logs/operator.log" 2>&1 &
children+=($!)

# The storefront runtime: every tenant the operator writes a config Secret for.
store_port=${EMPORIUM_DEV_PORT:-8000}
port_free "$store_port" || store_port=$(free_port)
EMPORIUM_LOG_FORMAT=text "$bin/emporium-storefront" --listen "127.0.0.1:$store_port" --watch-secrets \
  >"$state/logs/storefront.log" 2>&1 &
children+=($!)

# Two merchants: a pooled bakery and a dedicated outfitter.
"$kubectl" apply -f examples/storefronts.yaml >/dev/null
log "waiting for the demo Storefronts to become Ready"
"$kubectl" wait --for=condition=Ready storefront/corner-bakery storefront/acme-outfitters --timeout=180s >/dev/null

admin_key() { # tenant → admin key from its config Secret
  "$kubectl" get secret -A -l "emporium.dev/tenant-config=true,emporium.dev/tenant=$1" \
    -o jsonpath='{.items[0].data.tenant\.json}' | base64 -d | python3 -c 'import json,sys; print(json.load(sys.stdin)["adminKey"])'
}
wait_served() { # host
  for _ in $(seq 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$store_port/api/v1/products")" = 200 ] && return 0
    sleep 0.2
  done
  log "the runtime does not serve $1 yet; see .state/logs/storefront.log"; return 1
}
bakery_key=$(admin_key corner-bakery)
acme_key=$(admin_key acme-outfitters)
wait_served corner-bakery.localhost
wait_served acme.localhost
scripts/load-catalog.py --base "http://127.0.0.1:$store_port" --host corner-bakery.localhost \
  --admin-key "$bakery_key" examples/catalog/corner-bakery.json
scripts/load-catalog.py --base "http://127.0.0.1:$store_port" --host acme.localhost \
  --admin-key "$acme_key" examples/catalog/acme-outfitters.json

cat <<EOF

Emporium is running. Ctrl-C stops everything.

  Stores (open in a browser; *.localhost resolves to this machine)
    Corner Bakery    (pooled)     http://corner-bakery.localhost:$store_port/
    Acme Outfitters  (dedicated)  http://acme.localhost:$store_port/

  Merchant admin API (see docs/api.md)
    curl -H 'Host: acme.localhost' -H 'Authorization: Bearer $acme_key' \\
         http://127.0.0.1:$store_port/api/v1/admin/orders

  Kubernetes
    export KUBECONFIG=$KUBECONFIG
    $kubectl get --raw /readyz
    $kubectl get storefronts

  Operator   http://127.0.0.1:$operator_port/metrics     log: .state/logs/operator.log
  Runtime    http://127.0.0.1:$store_port/healthz        log: .state/logs/storefront.log
  Services   scripts/stack.sh status
EOF

# Stay up until Ctrl-C, or until the operator or the runtime exits.
set +e
wait -n "${children[@]}"
log "a component exited; see .state/logs/"
exit 1
