#!/usr/bin/env bash
# Starts and stops the local stack on free loopback ports: the Kubernetes control plane,
# PostgreSQL, Redis, moto (AWS: RDS, DynamoDB, SQS) and stripe-mock. Writes .state/env, which the
# tests and `make dev` read.
#
#   scripts/stack.sh start     start everything (stopping a previous stack first)
#   scripts/stack.sh stop      stop everything this script started
#   scripts/stack.sh status    show what runs where
#
# EMPORIUM_REAL_NODE=1 scripts/stack.sh start also starts a real node (scripts/node.sh, needs
# root); stop always stops one that runs.
#
# Everything lives under .state/ (git-ignored); logs are in .state/logs/ and
# .state/controlplane/logs/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state="$root/.state"
env_file="$state/env"
pids="$state/pids"

log() { printf '[stack] %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }
# PostgreSQL refuses to run as root; when we are root it runs as the Debian `postgres` user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

wait_until() { # seconds, description, command...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "$what did not come up within ${limit}s"; return 1; fi
    sleep 0.2
  done
}

start_bg() { # name, command... (stdout/stderr to .state/logs/<name>.log)
  local name=$1; shift
  setsid "$@" >"$state/logs/$name.log" 2>&1 < /dev/null &
  echo "$name $!" >>"$pids"
}

stop() {
  # The real node first (if one runs), while the control plane it registered with is still up.
  if [ -f "$state/node/pids" ]; then scripts/node.sh stop || true; fi
  if [ -f "$pids" ]; then
    while read -r name pid; do
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      fi
    done <"$pids"
    # Give each a moment to exit cleanly, then make sure.
    for _ in $(seq 50); do
      alive=0
      while read -r name pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$pids"
      [ $alive = 0 ] && break
      sleep 0.2
    done
    while read -r name pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$pids"
    rm -f "$pids"
  fi
  if [ -f "$state/postgres/data/postmaster.pid" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$state/postgres/data" stop -m fast >/dev/null 2>&1 || true
  fi
  rm -f "$env_file"
}

start() {
  stop
  scripts/install-tools.sh
  mkdir -p "$state/logs"
  : >"$pids"
  local t0=$SECONDS

  # Kubernetes control plane.
  start_bg controlplane .bin/controlplane up --dir "$state/controlplane"

  # PostgreSQL: a throwaway cluster with password auth over TCP, like a real server.
  local pg_port pg_password pgdir="$state/postgres"
  pg_port=$(free_port)
  if [ ! -f "$pgdir/data/PG_VERSION" ]; then
    rm -rf "$pgdir"; mkdir -p "$pgdir"
    head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pgdir/password"
    [ "$(id -u)" = 0 ] && chown -R postgres "$pgdir"
    as_pg "$(pg_bin)/initdb" -D "$pgdir/data" -U emporium --pwfile="$pgdir/password" \
      --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$state/logs/initdb.log"
  fi
  pg_password=$(cat "$pgdir/password")
  as_pg "$(pg_bin)/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w -t 60 start \
    -o "-p $pg_port -k $pgdir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null

  # Redis, memory only.
  local redis_port; redis_port=$(free_port)
  start_bg redis redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no

  # moto: RDS, DynamoDB, SQS (and the rest of AWS) on one port.
  local moto_port; moto_port=$(free_port)
  start_bg moto .venv/bin/moto_server -H 127.0.0.1 -p "$moto_port"

  # stripe-mock: the Stripe API from its OpenAPI spec.
  local stripe_port; stripe_port=$(free_port)
  # Loopback only (its -http-port binds every interface).
  start_bg stripe-mock .bin/stripe-mock -http-addr "127.0.0.1:$stripe_port" -https-addr "127.0.0.1:$(free_port)"

  wait_until 30 redis redis-cli -p "$redis_port" ping
  wait_until 60 moto curl -sf "http://127.0.0.1:$moto_port/moto-api/"
  wait_until 30 stripe-mock curl -s -o /dev/null "http://127.0.0.1:$stripe_port/v1/charges"
  wait_until 120 "the control plane" test -f "$state/controlplane/ready"

  # shellcheck disable=SC1091
  source "$state/controlplane/ready"
  cat >"$env_file" <<EOF
# Written by scripts/stack.sh start; removed by scripts/stack.sh stop.
KUBECONFIG=$KUBECONFIG
KUBE_SERVER=$KUBE_SERVER
DATABASE_URL=postgres://emporium:$pg_password@127.0.0.1:$pg_port/postgres
PGHOST=127.0.0.1
PGPORT=$pg_port
PGUSER=emporium
PGPASSWORD=$pg_password
REDIS_URL=redis://127.0.0.1:$redis_port/
AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
STRIPE_API_BASE=http://127.0.0.1:$stripe_port
EOF
  log "stack up in $((SECONDS - t0))s; environment in .state/env"
  # Opt-in: a real node (containerd, kubelet, kube-proxy) beside kwok; docs/real-node.md.
  if [ "${EMPORIUM_REAL_NODE:-0}" = 1 ]; then scripts/node.sh start; fi
  status
}

status() {
  if [ ! -f "$env_file" ]; then echo "stack: not running"; return 0; fi
  grep -E '^(KUBECONFIG|KUBE_SERVER|DATABASE_URL|REDIS_URL|AWS_ENDPOINT_URL|STRIPE_API_BASE)=' "$env_file" |
    sed -E 's#(postgres://[^:]+:)[^@]+@#\1***@#; s/^/  /'
  [ -f "$pids" ] && while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then echo "  $name: running (pid $pid)"; else echo "  $name: NOT running (see .state/logs/$name.log)"; fi
  done <"$pids"
  if [ -f "$state/node/pids" ]; then scripts/node.sh status; fi
  return 0
}

case "${1:-}" in
  start) start ;;
  stop) stop; log "stopped" ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
