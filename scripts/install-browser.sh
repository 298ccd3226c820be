#!/usr/bin/env bash
# Installs what the headless browser journey (tests/browser/journey.mjs, run by
# tests/tests/browser.rs) needs: Debian's chromium and the pinned playwright-core from npm.
# Idempotent and fast when everything is present: chromium is installed only when
# /usr/bin/chromium is missing, `npm ci` runs only when node_modules is missing or
# tests/browser/package-lock.json changed since the last install (a stamp file records its hash).
#
# Needs root (or passwordless sudo) only when chromium is missing. Needs node and npm.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/tests/browser"

log() { printf '[install-browser] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian chromium ---------------------------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian package: chromium"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
  [ -x /usr/bin/chromium ] || { log "apt-get installed chromium but /usr/bin/chromium is missing"; exit 1; }
fi

# --- playwright-core (npm) -----------------------------------------------------------------------
command -v node >/dev/null && command -v npm >/dev/null \
  || { log "node and npm are missing: the journey needs Node.js 20 or newer with npm"; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] \
  || { log "Node.js $(node --version) is too old: playwright-core needs 20 or newer"; exit 1; }
lock_hash=$(sha256sum "$dir/package-lock.json" | cut -c1-16)
stamp="$dir/node_modules/.emporium-lock-$lock_hash"
if [ ! -f "$stamp" ]; then
  log "npm ci in tests/browser (playwright-core; no browser download)"
  # playwright-core never downloads browsers; the variable is belt and braces.
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  rm -f "$dir"/node_modules/.emporium-lock-*
  touch "$stamp"
fi
