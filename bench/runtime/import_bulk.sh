#!/usr/bin/env bash
# Bulk import of 20,000 products (issue 16 item 3): installs dynalite if missing (pinned in
# bench/package-lock.json), builds the release runtime, then runs bench/runtime/import_bulk.py
# (dynalite and two runtime replicas on free 127.0.0.1 ports, all stopped on exit) and
# regenerates docs/benchmarks.md. Needs DATABASE_URL (superuser) and REDIS_URL: taken from
# .state/env when not set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bench="$(dirname "$here")"
root="$(dirname "$bench")"
cd "$root"

if [[ -z "${DATABASE_URL:-}" || -z "${REDIS_URL:-}" ]] && [[ -f .state/env ]]; then
  set -a; # shellcheck disable=SC1091
  . .state/env; set +a
fi
if [[ ! -f "$bench/node_modules/dynalite/package.json" ]]; then
  echo "[bench] installing dynalite (npm, pinned in bench/package-lock.json)"
  (cd "$bench" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [[ -z "${BENCH_RUNTIME_BIN:-}" ]]; then
  echo "[bench] cargo build --release -p emporium-storefront"
  cargo build --release -p emporium-storefront
fi
python3 "$here/import_bulk.py"
python3 "$here/report.py"
