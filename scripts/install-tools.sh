#!/usr/bin/env bash
# Installs everything Emporium's tests and `make dev` need, pinned, into the repository
# (.bin/, .venv/) and, for Debian packages, into the system. Idempotent: when everything is
# present it finishes in a few seconds.
#
#   scripts/install-tools.sh            everything the tests need (with Debian's chromium and
#                                       playwright-core for the browser test)
#
# Needs root (or passwordless sudo) only when a Debian package is missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/versions.env

cache=${EMPORIUM_CACHE_DIR:-$HOME/.cache/emporium}
mkdir -p .bin "$cache/bin"

log() { printf '[install] %s\n' "$*" >&2; }
source scripts/lib.sh

# --- Debian packages -------------------------------------------------------------------------
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
  # The packages start system-wide services; the project runs its own on free ports instead.
  as_root sh -c 'command -v systemctl >/dev/null && systemctl disable --now redis-server postgresql >/dev/null 2>&1 || true'
fi

# --- Python tools: moto (AWS APIs), kubectl ---------------------------------------------------
py_stamp=".venv/.emporium-$(printf '%s' "$PY_REQUIREMENTS" | sha256sum | cut -c1-16)"
if [ ! -f "$py_stamp" ]; then
  log "installing Python tools into .venv: $PY_REQUIREMENTS"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC2086
  .venv/bin/pip install -q --disable-pip-version-check $PY_REQUIREMENTS
  rm -f .venv/.emporium-*
  touch "$py_stamp"
fi
ln -sf ../.venv/bin/kubectl .bin/kubectl

# --- Go programs ------------------------------------------------------------------------------
# Each binary is cached outside the checkout under a key of its pinned version (or its source
# hash), so a fresh clone on the same machine links nothing again.
export GOFLAGS=${GOFLAGS:--buildvcs=false}

go_tool() { # name, cache key, build command... (the command writes the file given last)
  ln -sf "$(cached_build file "$@")" ".bin/$1"
}

# The version stamp is what `kubectl version` reports for the server.
k8s_ldflags="-s $(k8s_version_ldflags tests/controlplane/go.mod)"
cp_key=$( (cat tests/controlplane/go.mod tests/controlplane/go.sum tests/controlplane/*.go tests/controlplane/*.yaml; echo "$k8s_ldflags") | sha256sum | cut -c1-16)
go_tool controlplane "$cp_key" sh -c 'cd tests/controlplane && go build -trimpath -ldflags="$0" -o "$1" .' "$k8s_ldflags"
go_tool helm "$HELM_VERSION" sh -c 'GOBIN= go install -trimpath -ldflags=-s "helm.sh/helm/v3/cmd/helm@$0" && mv "$(go env GOPATH)/bin/helm" "$1"' "$HELM_VERSION"
go_tool stripe-mock "$STRIPE_MOCK_VERSION" sh -c 'GOBIN= go install -trimpath -ldflags=-s "github.com/stripe/stripe-mock@$0" && mv "$(go env GOPATH)/bin/stripe-mock" "$1"' "$STRIPE_MOCK_VERSION"
# promtool (Prometheus' rule checker; module version v0.x = Prometheus 3.x).
go_tool promtool "$PROMETHEUS_VERSION" sh -c 'GOBIN= go install -trimpath -ldflags=-s "github.com/prometheus/prometheus/cmd/promtool@$0" && mv "$(go env GOPATH)/bin/promtool" "$1"' "$PROMETHEUS_VERSION"

# --- Browser test: Debian chromium and playwright-core (tests/browser) ------------------------
scripts/install-browser.sh

log "tools ready in .bin/ and .venv/"
