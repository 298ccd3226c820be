#!/usr/bin/env bash
# Builds and installs what the real node needs (opt-in; see docs/real-node.md), pinned in
# scripts/versions.env, from the Go module proxy: containerd (+ containerd-shim-runc-v2, ctr),
# runc, the CNI plugins, metrics-server, Traefik, crictl, and kubelet + kube-proxy (tests/node, one binary `kubenode`,
# from the same k8s.io/kubernetes as the control plane). Binaries are cached outside the checkout
# in ~/.cache/emporium/bin keyed by version (or source hash) and linked into .bin/, like
# scripts/install-tools.sh does. Idempotent: when everything is cached it takes about a second.
#
# Needs root: a node is root's business (cgroups, mounts, netns, iptables), and the Debian
# packages below (nftables for kube-proxy, iptables for CNI portmap, conntrack, libseccomp-dev for
# runc) may be missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/versions.env

cache=${EMPORIUM_CACHE_DIR:-$HOME/.cache/emporium}
mkdir -p .bin "$cache/bin"
log() { printf '[install-node] %s\n' "$*" >&2; }
source scripts/lib.sh
# Builds run at the lowest CPU priority (nice -n 19): the machine has 2 cores and others share them.

# --- Debian packages -------------------------------------------------------------------------
missing=()
command -v iptables >/dev/null || missing+=(iptables)
command -v conntrack >/dev/null || missing+=(conntrack)
command -v nft >/dev/null || missing+=(nftables)
[ -f /usr/include/seccomp.h ] || missing+=(libseccomp-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
apt_install ${missing[@]+"${missing[@]}"}

export GOFLAGS=${GOFLAGS:--buildvcs=false}

# cached_dir name key build-command...: a cached directory the command fills (scripts/lib.sh).
cached_dir() { cached_build dir "$@"; }
link_bins() { local f; for f in "$1"/*; do ln -sfn "$f" ".bin/$(basename "$f")"; done; }

# containerd, its runc shim and ctr. No btrfs/devmapper/zfs snapshotters (overlayfs only), so no
# C headers are needed; statically linked like upstream's release.
d=$(cached_dir containerd "$CONTAINERD_VERSION" sh -c '
  pkg=github.com/containerd/containerd/v2
  ld="-s -w -X $pkg/version.Version=$0 -X $pkg/version.Package=$pkg"
  GOBIN=$1 CGO_ENABLED=0 nice -n 19 go install -trimpath -tags no_btrfs,no_devmapper,no_zfs -ldflags "$ld" \
    $pkg/cmd/containerd@$0 $pkg/cmd/containerd-shim-runc-v2@$0 $pkg/cmd/ctr@$0' "$CONTAINERD_VERSION")
link_bins "$d"

# runc with seccomp (cgo, libseccomp).
d=$(cached_dir runc "$RUNC_VERSION" sh -c '
  GOBIN=$1 CGO_ENABLED=1 nice -n 19 go install -trimpath -tags seccomp -ldflags "-s -w -X main.version=${0#v}" \
    github.com/opencontainers/runc@$0' "$RUNC_VERSION")
link_bins "$d"

# CNI plugins: containerd's CRI plugin finds them in .bin/cni/.
d=$(cached_dir cni-plugins "$CNI_PLUGINS_VERSION" sh -c '
  p=github.com/containernetworking/plugins/plugins
  GOBIN=$1 CGO_ENABLED=0 nice -n 19 go install -trimpath -ldflags "-s -w" \
    $p/main/bridge@$0 $p/main/loopback@$0 $p/ipam/host-local@$0 $p/meta/portmap@$0' "$CNI_PLUGINS_VERSION")
ln -sfn "$d" .bin/cni

# metrics-server: node and pod CPU/memory from the kubelet's /metrics/resource, served as
# metrics.k8s.io through the API server's aggregation layer, for HorizontalPodAutoscalers.
d=$(cached_dir metrics-server "$METRICS_SERVER_VERSION" sh -c '
  GOBIN=$1 CGO_ENABLED=0 nice -n 19 go install -trimpath -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$0" \
    sigs.k8s.io/metrics-server/cmd/metrics-server@$0' "$METRICS_SERVER_VERSION")
link_bins "$d"

# Traefik: the node's ingress controller (class emporium-local; scripts/node.sh). Its go.mod has
# replace directives, which `go install module@version` refuses, so it is built inside a copy of
# its module as the Go module proxy serves it (go.sum included), then the copy is removed.
d=$(cached_dir traefik "$TRAEFIK_VERSION" sh -c '
  set -e
  mod=github.com/traefik/traefik/v3
  dir=$(go mod download -json "$mod@$0" | sed -n "s/^[[:space:]]*\"Dir\": \"\(.*\)\",\$/\1/p")
  [ -d "$dir" ] || { echo "go mod download $mod@$0 gave no directory" >&2; exit 1; }
  src="$1.src"; rm -rf "$src"; cp -r "$dir" "$src"; chmod -R u+w "$src"
  cd "$src"
  CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "-s -w -X $mod/pkg/version.Version=$0" -o "$1/traefik" ./cmd/traefik
  cd / && rm -rf "$src"' "$TRAEFIK_VERSION")
link_bins "$d"

# crictl.
d=$(cached_dir crictl "$CRICTL_VERSION" sh -c '
  GOBIN=$1 CGO_ENABLED=0 nice -n 19 go install -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$0" \
    sigs.k8s.io/cri-tools/cmd/crictl@$0' "$CRICTL_VERSION")
link_bins "$d"

# crane: images without a Docker engine (the node's pause and test images, tests/node/image).
d=$(cached_dir crane "$GGCR_VERSION" sh -c '
  GOBIN=$1 CGO_ENABLED=0 nice -n 19 go install -trimpath -ldflags "-s -w" \
    github.com/google/go-containerregistry/cmd/crane@$0' "$GGCR_VERSION")
link_bins "$d"

# kubelet and kube-proxy: tests/node, the same k8s.io/kubernetes as tests/controlplane (and so
# mostly the same Go build cache). The version stamp is what the Node object reports.
k8s_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' tests/node/go.mod)
k8s_ldflags="-s -w $(k8s_version_ldflags tests/node/go.mod)"
node_key=$( (cat tests/node/go.mod tests/node/go.sum tests/node/*.go; echo "$k8s_ldflags") | sha256sum | cut -c1-16)
d=$(cached_dir kubenode "$node_key" sh -c 'cd tests/node && nice -n 19 go build -trimpath -ldflags="$0" -o "$1/kubenode" .' "$k8s_ldflags")
link_bins "$d"

# The node's images, built here without a Docker engine (tests/node/image): the sandbox
# ("pause") image and the smoke test's HTTP server, each one layer holding one static binary,
# non-root, no shell. scripts/node.sh imports them into containerd.
img_key=$( (cat tests/node/image/go.mod tests/node/image/go.sum tests/node/image/*/*.go) | sha256sum | cut -c1-16)
d=$(cached_dir node-images "$img_key" sh -c '
  cd tests/node/image && out=$0
  CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "-s -w" -o "$out/bin/" ./mkimage ./hello ./pause
  "$out/bin/mkimage" -o "$out/pause.tar" -name localhost/emporium/pause:local -user 65535:65535 \
    -entrypoint /pause -file /pause="$out/bin/pause"
  "$out/bin/mkimage" -o "$out/hello.tar" -name localhost/emporium/hello:local -user 65532:65532 \
    -entrypoint /hello -port 8080 -file /hello="$out/bin/hello"')
ln -sfn "$d" .bin/node-images

log "node tools ready in .bin/: containerd $CONTAINERD_VERSION, traefik $TRAEFIK_VERSION, runc $RUNC_VERSION, CNI plugins $CNI_PLUGINS_VERSION, metrics-server $METRICS_SERVER_VERSION, crictl $CRICTL_VERSION, crane $GGCR_VERSION, kubelet/kube-proxy $k8s_version"
