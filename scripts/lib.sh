# Shared by scripts/install-tools.sh and scripts/install-node.sh (sourced, not run): running as
# root, installing missing Debian packages, and the build cache outside the checkout.
# The caller sets `cache` (the cache directory) and defines `log`.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# apt_install package...: installs the Debian packages named (callers name only missing ones).
apt_install() {
  [ $# -gt 0 ] || return 0
  log "installing Debian packages: $*"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# cached_build file|dir name key build-command...: prints the path of "$cache/bin/<name>-<key>",
# building it first when missing. The command gets a temporary path as its last argument: a file
# to write (`file`) or an empty directory to fill (`dir`). Two checkouts installing at once build
# each tool once: the second waits on a lock per tool.
cached_build() {
  local kind=$1 name=$2 key=$3; shift 3
  local cached="$cache/bin/$name-$key"
  if [ ! -e "$cached" ]; then
    exec 9>"$cache/bin/.lock-$name"
    flock 9
  fi
  if [ ! -e "$cached" ]; then
    log "building $name ($key); the first build takes a while on 2 cores"
    local tmp="$cache/bin/.tmp-$name-$$" t0=$SECONDS
    rm -rf "$tmp"
    [ "$kind" = dir ] && mkdir -p "$tmp"
    "$@" "$tmp" >&2
    mv "$tmp" "$cached"
    log "built $name in $((SECONDS - t0))s"
  fi
  exec 9>&-
  echo "$cached"
}

# k8s_version_ldflags go.mod: the -X flags that stamp the k8s.io/kubernetes version of that
# module into a binary (what `kubectl version` reports for the server, and a Node for its kubelet).
k8s_version_ldflags() {
  local v
  v=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$1")
  printf '%s' "-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitTreeState=clean"
  printf '%s' " -X k8s.io/component-base/version.gitMajor=$(echo "${v#v}" | cut -d. -f1)"
  printf '%s' " -X k8s.io/component-base/version.gitMinor=$(echo "${v#v}" | cut -d. -f2)"
}
