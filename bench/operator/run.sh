#!/usr/bin/env bash
# Operator benchmark (issue 8). Needs the shared stack (scripts/stack.sh start → .state/env).
# Env: N ("100" or "100 1000"), CONCURRENCY (8), PROVIDERS ("none aws"), STEADY_S (60).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
[ -f "$root/.state/env" ] || { echo "bench operator: no .state/env; start the stack (scripts/stack.sh start)" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/emporium/target}"
if [ -z "${OPERATOR_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p emporium-operator)
  export OPERATOR_BIN="$CARGO_TARGET_DIR/release/emporium-operator"
fi
python3 "$here/bench.py"
python3 "$root/bench/runtime/report.py"
