#!/usr/bin/env bash
# Runtime benchmark (issue 8): installs what it needs (idempotent), builds the release runtime,
# then runs bench/runtime/bench.py, which starts dynalite and the runtime on free 127.0.0.1 ports,
# runs wrk, stops both, writes bench/results/runtime.json and regenerates docs/benchmarks.md.
# Needs DATABASE_URL (superuser) and REDIS_URL: taken from .state/env when not set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bench="$(dirname "$here")"
root="$(dirname "$bench")"
cd "$root"

if [[ -z "${DATABASE_URL:-}" || -z "${REDIS_URL:-}" ]] && [[ -f .state/env ]]; then
  set -a; # shellcheck disable=SC1091
  . .state/env; set +a
fi

if ! command -v wrk >/dev/null; then
  echo "[bench] installing wrk (Debian)"
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; }
fi
if [[ ! -f "$bench/node_modules/dynalite/package.json" ]]; then
  echo "[bench] installing dynalite (npm, pinned in bench/package-lock.json)"
  (cd "$bench" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [[ -z "${BENCH_RUNTIME_BIN:-}" ]]; then
  echo "[bench] cargo build --release -p emporium-storefront"
  cargo build --release -p emporium-storefront
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
python3 "$here/bench.py"
python3 "$here/report.py"
