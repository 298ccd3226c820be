#!/usr/bin/env bash
# `make dev`: the whole product on this machine. Installs what is missing, starts the control
# plane and services, runs the operator (PostgreSQL databases, DynamoDB tables and SQS queues on
# moto) and the storefront runtime (tenants from the operator's Secrets), applies the example
# plans and two demo Storefronts, loads a sample catalog into each, and prints how to reach
# everything. Ctrl-C stops all of it.
#
# Where the real node can run (root, and no other checkout runs it; docs/real-node.md), everything
# runs as pods, as on a cluster: the node starts with the stack, `make images` builds the images,
# `helm install` of charts/emporium runs the operator, the operator runs each tenant's runtime
# (the pool Deployment for the pooled bakery, a Deployment of its own for Acme), and shoppers
# reach both through the node's ingress controller (Traefik) on the port printed at the end.
# Elsewhere the operator and one runtime serving every tenant run as host processes.
#
#   EMPORIUM_DEV_NODE=0      host processes even where the node could run
#   EMPORIUM_DEV_PORT=8000   the host runtime's port (default 8000, or a free one if taken);
#                            with the node, the ingress listens on a free port
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
on_node=0
if [ "${EMPORIUM_DEV_NODE:-1}" != 0 ] && scripts/node.sh available; then on_node=1; fi
log "building the operator and the storefront runtime"
# The whole workspace, as `make test` builds it: `-p` alone would rebuild the AWS SDK crates
# with other features (~15 minutes on 2 cores).
cargo build --locked -q --workspace --bins

if [ $on_node = 1 ]; then
  scripts/images.sh
  EMPORIUM_REAL_NODE=1 scripts/stack.sh start
else
  scripts/stack.sh start
fi
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

admin_key() { # tenant → admin key from its config Secret
  "$kubectl" get secret -A -l "emporium.dev/tenant-config=true,emporium.dev/tenant=$1" \
    -o jsonpath='{.items[0].data.tenant\.json}' | base64 -d | python3 -c 'import json,sys; print(json.load(sys.stdin)["adminKey"])'
}
wait_served() { # base URL, host
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" "$1/api/v1/products")" = 200 ] && return 0
    sleep 0.2
  done
  log "$2 is not served at $1 yet; see .state/logs/"; return 1
}

if [ $on_node = 1 ]; then
  set -a
  # shellcheck disable=SC1091
  source "$state/node/env"
  set +a
  # The chart, as a platform team installs it, with the values of this machine: the images
  # built here, everything on the real node, the stack at the node's address, moto's
  # credentials in a Secret (where EKS has IRSA), and the node's ingress class instead of the ALB.
  release_ns=emporium-system
  "$kubectl" create namespace "$release_ns" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
  "$kubectl" label namespace "$release_ns" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
  "$kubectl" -n "$release_ns" create secret generic emporium-postgres --dry-run=client -o yaml \
    --from-literal=adminUrl="$NODE_DATABASE_URL" --from-file=passwordKey="$state/postgres-password-key" |
    "$kubectl" apply -f - >/dev/null
  "$kubectl" -n "$release_ns" create secret generic emporium-aws --dry-run=client -o yaml \
    --from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" --from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" |
    "$kubectl" apply -f - >/dev/null
  tag=$(cat .bin/images/tag)
  cat >"$state/dev-values.yaml" <<EOF
# Written by scripts/dev.sh for this machine's real node.
image: { repository: localhost/emporium/operator, tag: "$tag", pullPolicy: IfNotPresent }
replicas: 1
nodeSelector: { emporium.dev/node: real }
tolerations: [{ key: emporium.dev/node, operator: Equal, value: real, effect: NoSchedule }]
runtimeImage: localhost/emporium/storefront:$tag
runtimeNodeSelector: { emporium.dev/node: real }
runtimeEnv:
  REDIS_URL: "$NODE_REDIS_URL"
  AWS_ENDPOINT_URL: "$NODE_AWS_ENDPOINT_URL"
  AWS_REGION: "$AWS_REGION"
  AWS_ACCESS_KEY_ID: "$AWS_ACCESS_KEY_ID"
  AWS_SECRET_ACCESS_KEY: "$AWS_SECRET_ACCESS_KEY"
aws: { region: "$AWS_REGION", credentialsSecret: emporium-aws }
alb: { ingressClass: "$NODE_INGRESS_CLASS" }
pool: { minReplicas: 1, maxReplicas: 2 }
providers:
  database: postgres
  tables: dynamodb
  queues: sqs
  awsEndpointUrl: "$NODE_AWS_ENDPOINT_URL"
  postgres: { secretName: emporium-postgres, tenantHost: "$NODE_PGHOST", tenantPort: "$NODE_PGPORT" }
readinessGate: deployment-available
logFormat: text
EOF
  log "helm install of charts/emporium (values: .state/dev-values.yaml)"
  .bin/helm upgrade --install emporium charts/emporium -n "$release_ns" -f "$state/dev-values.yaml" \
    --wait --timeout=300s >/dev/null
  "$kubectl" apply --server-side -f examples/plans.yaml >/dev/null
  "$kubectl" apply -f examples/storefronts.yaml >/dev/null
  log "waiting for the demo Storefronts to become Ready (their pods Available)"
  "$kubectl" wait --for=condition=Ready storefront/corner-bakery storefront/acme-outfitters --timeout=300s >/dev/null
  ingress=$NODE_INGRESS_URL
  ingress_port=${ingress##*:}
  wait_served "$ingress" corner-bakery.localhost
  wait_served "$ingress" acme.localhost
  scripts/load-catalog.py --base "$ingress" --host corner-bakery.localhost \
    --admin-key "$(admin_key corner-bakery)" examples/catalog/corner-bakery.json
  scripts/load-catalog.py --base "$ingress" --host acme.localhost \
    --admin-key "$(admin_key acme-outfitters)" examples/catalog/acme-outfitters.json
  cat <<EOF

Emporium is running on the real node: the operator and every store are pods. Ctrl-C stops everything.

  Stores, through the ingress (Traefik); *.localhost resolves to this machine
    Corner Bakery    (pooled: the pool Deployment)   http://corner-bakery.localhost:$ingress_port/
    Acme Outfitters  (dedicated: its own pods)       http://acme.localhost:$ingress_port/
    Merchant sign-in                                 http://acme.localhost:$ingress_port/admin/

  Kubernetes
    export KUBECONFIG=$KUBECONFIG
    $kubectl get storefronts -o wide
    $kubectl get pods -A -o wide --field-selector spec.nodeName=$NODE_NAME
    PATH=$bin:\$PATH $kubectl emporium status acme-outfitters   (the plugin, docs/operations.md)

  Operator logs  $kubectl -n $release_ns logs deploy/emporium-operator
  Node           scripts/node.sh status        logs: .state/node/logs/
  Services       scripts/stack.sh status
EOF
  # Stay up until Ctrl-C or SIGTERM (the EXIT trap stops the stack, which stops the node and its
  # pods). `wait` returns at once on a signal; a foreground sleep would hold the trap back.
  sleep infinity &
  children+=($!)
  wait $!
fi

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

bakery_key=$(admin_key corner-bakery)
acme_key=$(admin_key acme-outfitters)
wait_served "http://127.0.0.1:$store_port" corner-bakery.localhost
wait_served "http://127.0.0.1:$store_port" acme.localhost
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
