#!/usr/bin/env bash
# `make images`: OCI images of the operator and the storefront runtime, built without a Docker
# engine (docs/real-node.md). Each image is one layer holding the workspace's binary, the shared
# libraries `ldd` lists for it (the dynamic loader included) and Debian's CA bundle, and mirrors
# its Dockerfile's final stage (gcr.io/distroless/cc-debian12:nonroot): same entrypoint, user
# 65532:65532, ports and environment. No shell, no package manager.
#
#   scripts/images.sh            build .bin/images/{operator,storefront}.tar; import them into the
#                                real node's containerd when the node runs (scripts/node.sh
#                                imports them at start otherwise)
#
#   EMPORIUM_IMAGE_PROFILE=debug   (default) from the debug binaries `make test` builds anyway;
#                                  a release build of both binaries takes far longer on 2 cores
#   EMPORIUM_IMAGE_PROFILE=release from `cargo build --release` (what the Dockerfiles ship)
#   EMPORIUM_IMAGE_TAG=dev         the tag: localhost/emporium/{operator,storefront}:<tag>
#   EMPORIUM_IMAGE_NO_BUILD=1      pack the binaries already built, without running cargo
#
# tests/tests/images.rs checks the result against the Dockerfiles.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/versions.env

cache=${EMPORIUM_CACHE_DIR:-$HOME/.cache/emporium}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
export GOFLAGS=${GOFLAGS:--buildvcs=false}
profile=${EMPORIUM_IMAGE_PROFILE:-debug}
tag=${EMPORIUM_IMAGE_TAG:-dev}
out="$root/.bin/images"
mkdir -p "$out" "$cache/bin"
log() { printf '[images] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
source scripts/lib.sh
t0=$SECONDS

case "$profile" in
  debug) cargo_profile=() dir=debug ;;
  release) cargo_profile=(--release) dir=release ;;
  *) die "EMPORIUM_IMAGE_PROFILE=$profile: want debug or release" ;;
esac

# The CA bundle distroless ships comes from Debian's ca-certificates, as here.
certs=/etc/ssl/certs/ca-certificates.crt
[ -f "$certs" ] || apt_install ca-certificates
[ -f "$certs" ] || die "$certs is missing after installing ca-certificates"

# mkimage (tests/node/image, go-containerregistry), cached by its source like install-node.sh.
mk_key=$( (cat tests/node/image/go.mod tests/node/image/go.sum tests/node/image/mkimage/*.go) | sha256sum | cut -c1-16)
mkimage=$(cached_build file mkimage "$mk_key" sh -c \
  'cd tests/node/image && CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "-s -w" -o "$0" ./mkimage')

# EMPORIUM_IMAGE_NO_BUILD=1: use the binaries as they are (tests/tests/images.rs, inside a
# `cargo test` that holds cargo's lock).
if [ "${EMPORIUM_IMAGE_NO_BUILD:-0}" != 1 ]; then
  log "cargo build ($profile) of emporium-operator and emporium-storefront"
  nice -n 19 cargo build --locked "${cargo_profile[@]}" \
    -p emporium-operator --bin emporium-operator -p emporium-storefront --bin emporium-storefront
fi

# What the Dockerfile's final stage says, read from the Dockerfile itself so the two cannot
# drift: USER, ENV, EXPOSE and the ENTRYPOINT (exec form). tests/tests/images.rs checks the
# outcome independently.
final_stage() { awk '/^FROM /{ buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$1"; }

# The base image's own environment (distroless sets these; the Dockerfile inherits them).
base_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "SSL_CERT_FILE=$certs")

build_image() { # component (operator|storefront)
  local component=$1 bin="$CARGO_TARGET_DIR/$dir/emporium-$1" dockerfile="$1/Dockerfile"
  [ -x "$bin" ] || die "no $bin: build it (cargo build --locked ${cargo_profile[*]:-} -p emporium-$component)"
  local stage user entrypoint
  stage=$(final_stage "$dockerfile")
  user=$(sed -n 's/^USER[[:space:]]\+//p' <<<"$stage" | tail -1)
  entrypoint=$(sed -n 's/^ENTRYPOINT[[:space:]]\+//p' <<<"$stage" | tail -1 |
    python3 -c 'import json,sys; print(" ".join(json.loads(sys.stdin.read())))') ||
    die "$dockerfile: ENTRYPOINT must be in exec form (a JSON array)"
  [ -n "$user" ] && [ -n "$entrypoint" ] || die "$dockerfile: its final stage needs USER and ENTRYPOINT"
  local args=(-o "$out/$component.tar.tmp" -name "localhost/emporium/$component:$tag" -user "$user" -entrypoint "$entrypoint")
  local e p
  for e in "${base_env[@]}"; do args+=(-env "$e"); done
  for e in $(sed -n 's/^ENV[[:space:]]\+//p' <<<"$stage"); do
    [[ "$e" == *=* ]] || die "$dockerfile: write ENV as KEY=VALUE (values without spaces), not '$e'"
    args+=(-env "$e")
  done
  for p in $(sed -n 's/^EXPOSE[[:space:]]\+//p' <<<"$stage"); do args+=(-port "${p%/tcp}"); done

  # The binary without its debug sections (a debug build carries line tables that are no use in
  # a pod and would triple the layer).
  local stripped="$out/.emporium-$component"
  strip --strip-debug -o "$stripped" "$bin"
  args+=(-file "${entrypoint%% *}=$stripped" -file "$certs=$certs")
  # Shared libraries and the loader, at the paths the binary asks for (ldd resolves them here, on
  # Debian 12 like the distroless base). linux-vdso is the kernel's.
  local lib
  for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u); do
    args+=(-file "$lib=$lib")
  done
  "$mkimage" "${args[@]}"
  mv "$out/$component.tar.tmp" "$out/$component.tar"
  rm -f "$stripped"
  log "localhost/emporium/$component:$tag -> .bin/images/$component.tar ($(du -m "$out/$component.tar" | cut -f1) MiB; user $user; entrypoint $entrypoint)"
}

build_image operator
build_image storefront
echo "$tag" >"$out/tag"

# A running node gets them now; node.sh start imports .bin/images/*.tar otherwise.
sock="$root/.state/node/containerd.sock"
if [ -S "$sock" ] && [ -x .bin/ctr ] && .bin/ctr --address "$sock" version >/dev/null 2>&1; then
  for component in operator storefront; do
    # (ctr warns about cgroup v1 on every call; only a failure's output is shown.)
    if ! err=$(.bin/ctr --address "$sock" -n k8s.io images import --no-unpack=false "$out/$component.tar" 2>&1 >/dev/null); then
      die "importing $component.tar into the node's containerd failed: $err"
    fi
  done
  log "imported into the running node's containerd"
fi
log "images ready in $((SECONDS - t0))s"
