#!/usr/bin/env bash
# `make reliability`: the long fault and abuse cases (docs/reliability.md). Starts the local
# stack like scripts/test.sh (and stops it on exit), then runs:
#   operator      SIGKILL the real operator every ~2 s while 50 dedicated tenants provision
#                 (tests/tests/reliability_operator.rs with EMPORIUM_RELIABILITY_TENANTS=50)
#   apiserver     crash the Kubernetes control plane (API server + etcd, SIGKILL) while the
#                 operator provisions; it must converge without a restart, nothing made twice
#   aws-outage    the operator's AWS endpoint (moto) paused and restarted mid-provisioning
#                 (operator/tests/reliability_aws.rs)
#   redis         Redis killed, restarted and paused under a runtime: shoppers still served,
#                 login limits still enforced (storefront/tests/redis_outage.rs)
#   rbac          the operator's `kubectl auth can-i` matrix (tests/tests/rbac.rs)
#   schemathesis  schemathesis against a runtime's /openapi.json: no 5xx, every response as
#                 documented (status code, content type, schema); also run by make test
#   abuse         oversized body, nested JSON, header flood, slow client, login brute force, RSS
#   pg-restart    PostgreSQL restarted under checkout load: every 2xx order exists exactly once
# Each case prints PASS/FAIL with its numbers; the script fails if any case failed.
#
#   scripts/reliability.sh                 start the stack, run every case, stop the stack
#   scripts/reliability.sh CASE...         run these cases against an already running stack
#                                          (.state/env, or EMPORIUM_ENV_FILE; the PostgreSQL data
#                                          directory is .state/postgres/data or RELIABILITY_PGDATA)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${EMPORIUM_CACHE_DIR:-$HOME/.cache/emporium}/target}
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_EXAMPLES=${SCHEMATHESIS_EXAMPLES:-25}
env_file=${EMPORIUM_ENV_FILE:-$root/.state/env}
pgdata=${RELIABILITY_PGDATA:-$root/.state/postgres/data}
out=$root/tests/artifacts/reliability
mkdir -p "$out"
bin=$CARGO_TARGET_DIR/debug

step() { printf '\n==> %s\n' "$*"; }
results=$out/summary.txt
pass() { printf 'PASS %s\n' "$*" | tee -a "$results"; }
fail() { printf 'FAIL %s\n' "$*" | tee -a "$results"; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# --- a runtime with one store from a tenants file ---------------------------------------------
runtime_pid=""
stop_runtime() {
  if [ -n "$runtime_pid" ] && kill -0 "$runtime_pid" 2>/dev/null; then
    kill "$runtime_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$runtime_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$runtime_pid" 2>/dev/null || true
  fi
  runtime_pid=""
  # Its database, role and tables (the stack is shared with other work when cases run one by one).
  if [ -n "${tenant_id:-}" ]; then
    psql "$DATABASE_URL" -qAt -c "DROP DATABASE IF EXISTS ${tenant_id}_db WITH (FORCE)" \
      -c "DROP ROLE IF EXISTS ${tenant_id}_app" >/dev/null 2>&1 || true
    "$root/.venv/bin/python" - "$tenant_id" >/dev/null 2>&1 <<'PY' || true
import sys, boto3
db = boto3.client("dynamodb")
for kind in ("catalog", "carts", "sessions"):
    try: db.delete_table(TableName=f"{sys.argv[1]}-{kind}")
    except Exception: pass
PY
    tenant_id=""
  fi
}

# Starts the runtime on $port serving $host; a fresh database (own login role) and fresh tables.
start_runtime() { # name [extra runtime flags...]
  local name=$1 id; shift
  id="rel$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  tenant_id=$id
  host="$id.localhost"
  admin_key="admin_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  local pw; pw="pw$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  tenant_db=${id}_db
  psql "$DATABASE_URL" -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE ${id}_app LOGIN PASSWORD '$pw' NOSUPERUSER NOCREATEDB NOCREATEROLE" \
    -c "CREATE DATABASE $tenant_db OWNER ${id}_app" >/dev/null
  cat >"$out/$name-tenants.json" <<EOF
[{"tenantId": "$id", "displayName": "Reliability $name", "domains": ["$host"], "tier": "pooled",
  "databaseUrl": "host=$PGHOST port=$PGPORT user=${id}_app password=$pw dbname=$tenant_db",
  "tables": {"catalog": "$id-catalog", "carts": "$id-carts", "sessions": "$id-sessions"},
  "adminKey": "$admin_key", "payments": {"provider": "manual"}}]
EOF
  port=$(free_port)
  base="http://127.0.0.1:$port"
  env -u EMPORIUM_WATCH_SECRETS -u EMPORIUM_TENANTS_FILE RUST_LOG=info \
    "$bin/emporium-storefront" --listen "127.0.0.1:$port" --log-format json \
    --tenants-file "$out/$name-tenants.json" --redis-url "$REDIS_URL" --create-tables "$@" \
    >"$out/$name-runtime.log" 2>&1 </dev/null &
  runtime_pid=$!
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" "$base/api/v1/products")" = 200 ] && return 0
    kill -0 "$runtime_pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "the runtime did not serve $host; see $out/$name-runtime.log" >&2
  tail -20 "$out/$name-runtime.log" >&2
  return 1
}

api() { # method path [json] -> body; status in $code
  local body
  body=$(curl -s -w '\n%{http_code}' -X "$1" -H "Host: $host" -H "Authorization: Bearer $admin_key" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "$base$2" || true)
  code=${body##*$'\n'}
  printf '%s' "${body%$'\n'*}"
}

seed_catalog() { # sku stock
  api POST /api/v1/admin/categories '{"id":"kitchen","name":"Kitchen"}' >/dev/null
  api POST /api/v1/admin/products "{\"title\":\"Ceramic mug\",\"description\":\"350 ml\",\"categories\":[\"kitchen\"],\"variants\":[{\"sku\":\"$1\",\"price\":{\"amount_minor\":900,\"currency\":\"EUR\"},\"attributes\":{},\"images\":[]}]}" >/dev/null
  [ "$code" = 201 ] || [ "$code" = 200 ] || { echo "create product: $code" >&2; return 1; }
  api PUT "/api/v1/admin/inventory/$1" "{\"available\":$2}" >/dev/null
  [ "${code:0:1}" = 2 ] || { echo "set stock: $code" >&2; return 1; }
}

# --- cases ---------------------------------------------------------------------------------------
case_operator() {
  step "operator: SIGKILL every ~2 s while 50 dedicated tenants provision"
  local log=$out/operator.txt
  if EMPORIUM_ENV_FILE=$env_file EMPORIUM_RELIABILITY_TENANTS=${RELIABILITY_TENANTS:-50} \
    cargo test --locked -q -p emporium-integration-tests --test reliability_operator operator_sigkilled -- --nocapture 2>&1 | tee "$log"; then
    pass "operator: $(grep -E 'SIGKILLs|Ready|made:|gone|whole run' "$log" | tr '\n' ';')"
  else
    fail "operator (see $log)"
  fi
}

# Runs one cargo test target (optionally filtered) as a case; PASS carries its printed numbers.
cargo_case() { # name package test [filter]
  local name=$1 log=$out/$1.txt
  step "$name: cargo test -p $2 --test $3 ${4:-}"
  if EMPORIUM_ENV_FILE=$env_file cargo test --locked -q -p "$2" --test "$3" ${4:+"$4"} -- --nocapture 2>&1 | tee "$log"; then
    pass "$name: $(grep -vE '^(running|test |$)' "$log" | grep -E '[0-9]' | tr '\n' ';' | cut -c1-600)"
  else
    fail "$name (see $log)"
  fi
}
case_apiserver() { cargo_case apiserver emporium-integration-tests reliability_operator operator_rides; }
case_aws_outage() { cargo_case aws-outage emporium-operator reliability_aws; }
case_redis() { cargo_case redis emporium-storefront redis_outage; }

case_rbac() {
  step "rbac: kubectl auth can-i matrix"
  local log=$out/rbac.txt
  if EMPORIUM_ENV_FILE=$env_file cargo test --locked -q -p emporium-integration-tests --test rbac -- --nocapture 2>&1 | tee "$log"; then
    pass "rbac: $(grep -cE '^(yes|no) ' "$log") checks as expected"
  else
    fail "rbac (see $log)"
  fi
}

case_schemathesis() {
  step "schemathesis $SCHEMATHESIS_VERSION against /openapi.json ($SCHEMATHESIS_EXAMPLES examples per operation)"
  # Its own venv under .venv/ so its dependencies never disturb moto's.
  local venv=$root/.venv/schemathesis
  if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/st" --version | grep -q "$SCHEMATHESIS_VERSION"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  start_runtime schemathesis
  seed_catalog SKU-ST 1000
  # Two passes so both kinds of caller are exercised: the merchant admin API with the admin key,
  # everything else with a shopper's session token.
  local token
  token=$(api POST /api/v1/auth/register '{"email":"fuzz@example.com","password":"correct horse battery","name":"F"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  local log=$out/schemathesis.txt rc=0 pass_name bearer filter
  : >"$log"
  for pass_name in admin shopper; do
    if [ $pass_name = admin ]; then bearer=$admin_key filter=(--include-path-regex '^/api/v1/admin')
    else bearer=$token filter=(--exclude-path-regex '^/api/v1/admin|^/api/v1/inventory/events$|^/api/v1/auth/logout$'); fi
    echo "--- pass: $pass_name" >>"$log"
    # Only server errors count: the other checks (conformance of every 4xx, acceptance of
    # generated "positive" data the handlers reject on business rules) are not what this proves.
    # Run from the artifacts directory: schemathesis keeps a .schemathesis/ cache in its cwd.
    (cd "$out" && "$venv/bin/st" run "$base/openapi.json" --url "$base" -H "Host: $host" \
      -H "Authorization: Bearer $bearer" "${filter[@]}" --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
      --max-examples "$SCHEMATHESIS_EXAMPLES" --seed 1 --request-timeout 10 --no-color \
      --report junit --report-dir "$out/schemathesis-report-$pass_name") >>"$log" 2>&1 || rc=$?
  done
  tail -25 "$log"
  local errors; errors=$(grep -c '"level":"ERROR"' "$out/schemathesis-runtime.log" || true)
  local summary; summary=$(grep -E -- '--- pass|Tested:|generated|Authentication failed' "$log" | tr -s ' ' | tr '\n' ';')
  if [ "$rc" = 0 ] && kill -0 "$runtime_pid" 2>/dev/null; then
    pass "schemathesis: no server errors, every response as documented;$summary runtime ERROR log lines: $errors"
  else
    fail "schemathesis (exit $rc;$summary see $log)"
  fi
  stop_runtime
}

# One round of every abuse probe; appends to details[], clears ok on a wrong answer.
abuse_round() { # round
  local r=$1 c

  # Oversized body (1 MiB; the limit is 64 KiB): 413. The server may answer and close before
  # curl has sent the whole body; curl then reports a send error (recorded as 000: rejected
  # without reading the body, which is also fine).
  c=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" -H 'Content-Type: application/json' \
    -H 'Expect:' --data-binary @"$out/big.json" "$base/api/v1/auth/register" || true)
  details+=("r$r.oversized=$c"); case $c in 413|000) ;; *) ok=0 ;; esac

  # Deeply nested JSON (30,000 levels, under the body limit): 4xx, and the runtime survives.
  c=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" -H 'Content-Type: application/json' \
    --data-binary @"$out/nested.json" "$base/api/v1/auth/register" || true)
  details+=("r$r.nested=$c"); [ "${c:0:1}" = 4 ] || ok=0
  c=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" -H "Authorization: Bearer $admin_key" \
    -H 'Content-Type: application/json' --data-binary @"$out/nested.json" "$base/api/v1/admin/products" || true)
  details+=("r$r.nested_admin=$c"); [ "${c:0:1}" = 4 ] || ok=0

  # Header flood: 2000 headers, one 200 KB header, 1 MiB of headers: 431 (request heads are
  # limited to 64 KiB), or the connection dropped when the client is still sending as the
  # server answers and closes.
  c=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" -H @"$out/flood.txt" "$base/api/v1/products" || true)
  details+=("r$r.2000_headers=$c"); case $c in 4*|000) ;; *) ok=0 ;; esac
  c=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" -H @"$out/bigheader.txt" "$base/api/v1/products" || true)
  details+=("r$r.200KB_header=$c"); case $c in 4*|000) ;; *) ok=0 ;; esac
  c=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" -H @"$out/hugeheaders.txt" "$base/api/v1/products" || true)
  details+=("r$r.1MiB_headers=$c"); case $c in 4*|000) ;; *) ok=0 ;; esac

  # Slow clients: 200 connections dribbling a request byte by byte for 14 s; meanwhile a normal
  # client's requests stay fast, and the server closes every slow one after its 10 s
  # header-read timeout.
  local slow n bad worst closed
  slow=$(python3 - "$port" "$host" <<'PY'
import socket, sys, threading, time, urllib.request
port, host = int(sys.argv[1]), sys.argv[2]
stop = time.time() + 14
socks = []
def dribble():
    try:
        s = socket.create_connection(("127.0.0.1", port)); socks.append(s)
        req = f"GET /api/v1/products HTTP/1.1\r\nHost: {host}\r\n"
        for ch in req:
            if time.time() > stop: return
            s.send(ch.encode()); time.sleep(0.1)
        while time.time() < stop:
            s.send(b"X"); time.sleep(0.5)
    except OSError:
        pass
threads = [threading.Thread(target=dribble, daemon=True) for _ in range(200)]
for t in threads: t.start()
time.sleep(1)
worst, n, bad = 0.0, 0, 0
while time.time() < stop - 0.5:
    t0 = time.time()
    try:
        r = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/products", headers={"Host": host}), timeout=5)
        bad += r.status != 200
    except Exception:
        bad += 1
    worst = max(worst, time.time() - t0); n += 1
    time.sleep(0.05)
closed = 0
for s in socks:
    s.settimeout(0.2)
    try:
        closed += s.recv(1) == b""
    except socket.timeout:
        pass
    except OSError:
        closed += 1
print(f"{n} {bad} {worst*1000:.0f} {closed}")
PY
)
  read -r n bad worst closed <<<"$slow"
  details+=("r$r.slow_clients=200 r$r.normal_requests=$n r$r.failed=$bad r$r.worst_ms=$worst r$r.slow_conns_closed_by_server=$closed")
  { [ "$bad" = 0 ] && [ "$worst" -lt 2000 ] && [ "$closed" = 200 ]; } || ok=0

  # Login brute force: 40 wrong passwords for one email from one IP.
  local codes=() first429="" i n429 n5xx
  for i in $(seq 40); do
    c=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" -H 'Content-Type: application/json' \
      --data '{"email":"victim@example.com","password":"wrong'"$i"'"}' "$base/api/v1/auth/login" || true)
    codes+=("$c"); [ "$c" = 429 ] && [ -z "$first429" ] && first429=$i
  done
  n429=$(printf '%s\n' "${codes[@]}" | grep -c '^429$' || true)
  n5xx=$(printf '%s\n' "${codes[@]}" | grep -c '^5' || true)
  details+=("r$r.login_attempts=40 r$r.first_429_at=${first429:-never} r$r.n429=$n429 r$r.n5xx=$n5xx")
  { [ -n "$first429" ] && [ "$n5xx" = 0 ]; } || ok=0

  c=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" "$base/api/v1/products" || true)
  details+=("r$r.after=$c r$r.rss_kb=$(rss_kb "$runtime_pid")")
  [ "$c" = 200 ] || ok=0
}

case_abuse() {
  step "abuse: oversized body, nested JSON, header flood, slow clients, login brute force"
  start_runtime abuse
  seed_catalog SKU-AB 100
  api POST /api/v1/auth/register '{"email":"victim@example.com","password":"correct horse battery","name":"V"}' >/dev/null
  head -c 1048576 /dev/zero | tr '\0' 'a' | sed 's/^/{"email":"/; s/$/"}/' >"$out/big.json"
  python3 -c 'print("[" * 30000 + "]" * 30000)' >"$out/nested.json"
  for i in $(seq 2000); do echo "X-Flood-$i: $i"; done >"$out/flood.txt"
  printf 'X-Big: %s\n' "$(head -c 200000 /dev/zero | tr '\0' b)" >"$out/bigheader.txt"
  for i in $(seq 8); do printf 'X-Huge-%s: %s\n' "$i" "$(head -c 131072 /dev/zero | tr '\0' h)"; done >"$out/hugeheaders.txt"
  ok=1 details=()
  local rss0 rss1 rss2
  rss0=$(rss_kb "$runtime_pid")
  # Round 1 shows the answers; round 2 shows memory does not keep growing with more abuse.
  abuse_round 1; rss1=$(rss_kb "$runtime_pid")
  abuse_round 2; rss2=$(rss_kb "$runtime_pid")
  details+=("rss_kb: start=$rss0 after_round1=$rss1 after_round2=$rss2")
  # Bounded: the second round may not add more than 32 MiB.
  [ "$rss2" -lt $((rss1 + 32 * 1024)) ] || ok=0
  if [ $ok = 1 ]; then pass "abuse: ${details[*]}"; else fail "abuse: ${details[*]}"; fi
  stop_runtime
}

case_pg_restart() {
  step "PostgreSQL restarted under checkout load"
  # One load-generator IP registers many shoppers: lift the per-IP login limit for this runtime.
  start_runtime pgrestart --login-limit-per-ip 1000000
  seed_catalog SKU-PG 1000000
  local log=$out/pg-restart.txt
  : >"$out/acked.txt"
  python3 - "$base" "$host" "$out/acked.txt" >"$log" 2>&1 <<'PY' &
import json, sys, threading, time, urllib.request, urllib.error, uuid
base, host, acked_path = sys.argv[1], sys.argv[2], sys.argv[3]
DURATION, WORKERS = 25, 8
stop = time.time() + DURATION
lock = threading.Lock()
acked, stats = [], {"2xx": 0, "retries": 0, "gave_up": 0, "statuses": {}}

def call(method, path, body=None, token=None, key=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Host": host, "Content-Type": "application/json"})
    if token: req.add_header("Authorization", "Bearer " + token)
    if key: req.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
    except Exception:
        return 0, None

def retried(fn):
    # A client retries an unacknowledged step (5xx, timeout, refused) with the same request.
    for attempt in range(40):
        status, body = fn()
        with lock: stats["statuses"][status] = stats["statuses"].get(status, 0) + 1
        if 200 <= status < 300: return status, body
        if 400 <= status < 500 and status not in (408, 429): return status, body
        with lock: stats["retries"] += 1
        time.sleep(0.25)
    return status, body

def shopper(w):
    n = 0
    while time.time() < stop:
        n += 1
        email = f"s{w}-{n}-{uuid.uuid4().hex[:6]}@example.com"
        s, sess = retried(lambda: call("POST", "/api/v1/auth/register", {"email": email, "password": "correct horse battery", "name": "S"}))
        if s == 409:  # registered by an unacknowledged attempt: log in
            s, sess = retried(lambda: call("POST", "/api/v1/auth/login", {"email": email, "password": "correct horse battery"}))
        if not (200 <= s < 300):
            with lock: stats["gave_up"] += 1
            continue
        token = sess["token"]
        s, cart = retried(lambda: call("POST", "/api/v1/carts", None, token))
        if not (200 <= s < 300):
            with lock: stats["gave_up"] += 1
            continue
        cid = cart["id"]
        s, _ = retried(lambda: call("POST", f"/api/v1/carts/{cid}/items", {"sku": "SKU-PG", "quantity": 1}, token))
        if not (200 <= s < 300):
            with lock: stats["gave_up"] += 1
            continue
        key = f"rel-{cid}"
        s, placed = retried(lambda: call("POST", f"/api/v1/carts/{cid}/checkout", {}, token, key))
        if 200 <= s < 300:
            with lock:
                stats["2xx"] += 1
                acked.append((cid, placed["order"]["id"]))
        else:
            with lock: stats["gave_up"] += 1

threads = [threading.Thread(target=shopper, args=(w,)) for w in range(WORKERS)]
for t in threads: t.start()
for t in threads: t.join()
with open(acked_path, "w") as f:
    for cid, oid in acked: f.write(f"{cid} {oid}\n")
print(json.dumps(stats, separators=(",", ":")))
PY
  local load=$!
  sleep 8
  local t0=$SECONDS restart_ok=1
  as_pg "$(pg_bin)/pg_ctl" -D "$pgdata" restart -m fast -w -t 60 >"$out/pg_ctl.txt" 2>&1 || restart_ok=0
  local restart_s=$((SECONDS - t0))
  wait "$load" || true
  local stats; stats=$(tail -1 "$log")
  local acked; acked=$(wc -l <"$out/acked.txt")
  # Every acknowledged checkout: exactly one order for its cart, with the acknowledged id.
  local dsn="${DATABASE_URL%/*}/$tenant_db"
  psql "$dsn" -qAt -F ' ' -c "SELECT cart_id, id, count(*) OVER (PARTITION BY cart_id) FROM orders" >"$out/orders.txt"
  local missing dup total
  total=$(wc -l <"$out/orders.txt")
  missing=$(awk 'NR==FNR {have[$1" "$2]=1; next} !(($1" "$2) in have)' "$out/orders.txt" "$out/acked.txt" | wc -l)
  dup=$(awk '$3 > 1' "$out/orders.txt" | wc -l)
  # Orders nobody was told about (possible when a client gives up; reported, not judged).
  local unacked; unacked=$(awk 'NR==FNR {have[$1" "$2]=1; next} !(($1" "$2) in have)' "$out/acked.txt" "$out/orders.txt" | wc -l)
  local summary="restart=${restart_s}s acked_2xx=$acked orders_in_db=$total missing=$missing carts_with_2_orders=$dup unacknowledged_orders=$unacked client_stats=$stats"
  if [ $restart_ok = 1 ] && [ "$acked" -gt 0 ] && [ "$missing" = 0 ] && [ "$dup" = 0 ] && kill -0 "$runtime_pid" 2>/dev/null; then
    pass "pg-restart: $summary"
  else
    fail "pg-restart: $summary (restart ok: $restart_ok; see $log)"
  fi
  stop_runtime
}

# --- main ----------------------------------------------------------------------------------------
trap 'stop_runtime' EXIT
cases=("$@")
if [ ${#cases[@]} = 0 ]; then
  cases=(operator apiserver aws-outage redis rbac schemathesis abuse pg-restart)
  step "tools, build"
  scripts/install-tools.sh
  cargo build --workspace --locked --bins
  cargo test --locked -p emporium-integration-tests --no-run
  step "start the stack"
  trap 'stop_runtime; scripts/stack.sh stop' EXIT
  trap 'exit 130' INT TERM
  scripts/stack.sh start
fi
[ -f "$env_file" ] || { echo "no stack env file $env_file: run scripts/stack.sh start first" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a
: >"$results"
for c in "${cases[@]}"; do
  case $c in
    operator|apiserver|aws-outage|redis|rbac|schemathesis|abuse|pg-restart) ;;
    *) echo "unknown case $c" >&2; exit 2 ;;
  esac
  # Each case in a subshell: a command failing inside it ends that case as FAIL (and stops its
  # runtime), not the whole run.
  set +e
  ( set -e; trap stop_runtime EXIT; "case_${c//-/_}" )
  rc=$?
  set -e
  if [ $rc != 0 ]; then fail "$c: aborted (exit $rc); see the output above"; fi
done

step "summary"
cat "$results"
! grep -q '^FAIL' "$results"
