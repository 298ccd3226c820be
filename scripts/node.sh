#!/usr/bin/env bash
# The real node (opt-in; docs/real-node.md): containerd + runc, CNI on a private bridge, a real
# kubelet registered with the local control plane, kube-proxy (nftables) and metrics-server
# (metrics.k8s.io, for HPAs) and Traefik as the local ingress controller (class emporium-local),
# beside kwok's fake nodes. Needs root and a running stack (scripts/stack.sh start writes .state/env).
#
#   scripts/node.sh start     start the node (stopping a previous one first); waits for Ready
#   scripts/node.sh stop      stop it and remove every container, mount, netns, cgroup, bridge,
#                             nftables table and sysctl change it made; deletes the Node object
#   scripts/node.sh status    show what runs
#   scripts/node.sh available exit 0 when this checkout may start the node (root, and no other
#                             checkout's node runs: one node per machine)
#
# Everything lives under .state/node/ (logs in .state/node/logs/). The pod network is
# 10.245.0.0/24 on the bridge emp0 (10.245.0.1 is the node's address); nothing is masqueraded
# and a forward filter keeps pod traffic on the bridge: it never leaves the machine.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state="$root/.state/node"
pids="$state/pids"

NODE_NAME=${EMPORIUM_NODE_NAME:-emporium-node}
NODE_ZONE=local-real
BRIDGE=emp0
POD_SUBNET=10.245.0.0/24
NODE_IP=10.245.0.1
SERVICE_CIDR=10.96.0.0/16
NFT_TABLE=emporium_node
# Top-level cgroup (in every v1 hierarchy and the unified one) that holds every pod.
CGROUP_ROOT=/emporium-node
CGROUP_CONTROLLERS="blkio cpu cpuacct cpuset devices freezer memory pids systemd unified"
# Sysctls the kubelet sets (container_manager_linux.go setupKernelTunables); stop restores them.
KUBELET_SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"

# One node per machine (the bridge, the cgroup and the tables have fixed names): the checkout
# running it is named here, and no other checkout's start or stop touches it while it runs.
OWNER_FILE=/run/emporium-node.owner

log() { printf '[node] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
kubectl() { "$root/.bin/kubectl" --kubeconfig "$KUBECONFIG" "$@"; }
ctr() { "$root/.bin/ctr" --address "$state/containerd.sock" -n k8s.io "$@"; }
crictl() { "$root/.bin/crictl" --runtime-endpoint "unix://$state/containerd.sock" --image-endpoint "unix://$state/containerd.sock" --timeout 20s "$@"; }

wait_until() { # seconds, description, command...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "$what did not come up within ${limit}s"; return 1; fi
    sleep 0.3
  done
}

load_env() {
  [ -f "$root/.state/env" ] || die "no .state/env: start the stack first (scripts/stack.sh start)"
  KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' "$root/.state/env")
  KUBE_SERVER=$(sed -n 's/^KUBE_SERVER=//p' "$root/.state/env")
  export KUBECONFIG
}

start_bg() { # name, command... (stdout/stderr to .state/node/logs/<name>.log)
  local name=$1; shift
  setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
  echo "$name $!" >>"$pids"
}

# --- certificates and kubeconfigs, signed by the control plane's CA --------------------------
client_kubeconfig() { # name, CN, O (may be empty)
  local name=$1 cn=$2 org=$3 pki="$root/.state/controlplane/pki" dir="$state/pki"
  local subj="/CN=$cn"; [ -n "$org" ] && subj="/O=$org/CN=$cn"
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key" 2>/dev/null
  openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -CAserial "$dir/ca.srl" -days 365 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
  cat >"$state/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: $KUBE_SERVER, certificate-authority: $pki/ca.crt}
users:
- name: $name
  user: {client-certificate: $dir/$name.crt, client-key: $dir/$name.key}
contexts:
- name: local
  context: {cluster: local, user: $name}
current-context: local
EOF
}

server_cert() { # name, CN, subjectAltName (openssl syntax): <name>.crt/.key under .state/node/pki
  local name=$1 cn=$2 san=$3 pki="$root/.state/controlplane/pki" dir="$state/pki"
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key" 2>/dev/null
  openssl req -new -key "$dir/$name.key" -subj "/CN=$cn" -out "$dir/$name.csr" 2>/dev/null
  printf 'extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\nsubjectAltName=%s\n' "$san" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -CAserial "$dir/ca.srl" -days 365 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
}

# --- network: bridge, forward filter --------------------------------------------------------
setup_network() {
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Forwarding only for packets arriving on the bridge (pod -> Service -> pod), never globally;
  # and a filter drops whatever a pod sends that would leave through another interface.
  sysctl -qw "net.ipv4.conf.$BRIDGE.forwarding=1"
  nft -f - <<EOF
table inet $NFT_TABLE {
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "$BRIDGE" oifname != "$BRIDGE" drop
    oifname "$BRIDGE" iifname != "$BRIDGE" drop
  }
}
EOF
  # The host reaches ClusterIPs through the bridge, from the node's address.
  ip route add "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
  mkdir -p "$state/cni/net.d" "$state/cni/ipam"
  cat >"$state/cni/net.d/10-emporium.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "emporium",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$state/cni/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "rangeStart": "10.245.0.10", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0", "gw": "$NODE_IP"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# --- the stack at the node's address ---------------------------------------------------------
# The stack listens on 127.0.0.1 only. Pods reach it at $NODE_IP (the bridge, which exists only
# while the node runs) through relays on the same port numbers (`kubenode forward`): the API
# server, PostgreSQL, Redis, moto and stripe-mock. Nothing listens on any other interface.
# .state/node/env names the addresses pods use.
port_of() { sed -E 's#^[a-z]+://([^@/]*@)?[^:/]+:([0-9]+).*#\2#' <<<"$1"; }
start_relays() {
  local env_file="$root/.state/env" var url port pairs=() lines=()
  for var in KUBE_SERVER REDIS_URL AWS_ENDPOINT_URL STRIPE_API_BASE; do
    url=$(sed -n "s/^$var=//p" "$env_file")
    [ -n "$url" ] || die "no $var in .state/env"
    port=$(port_of "$url")
    pairs+=("$NODE_IP:$port=127.0.0.1:$port")
    lines+=("NODE_$var=$(sed -E "s#(://([^@/]*@)?)127\.0\.0\.1:#\1$NODE_IP:#" <<<"$url")")
  done
  port=$(sed -n 's/^PGPORT=//p' "$env_file")
  [ -n "$port" ] || die "no PGPORT in .state/env"
  pairs+=("$NODE_IP:$port=127.0.0.1:$port")
  lines+=("NODE_PGHOST=$NODE_IP" "NODE_PGPORT=$port"
    "NODE_DATABASE_URL=$(sed -n 's/^DATABASE_URL=//p' "$env_file" | sed -E "s#@127\.0\.0\.1:#@$NODE_IP:#")")
  start_bg relays "$root/.bin/kubenode" forward "${pairs[@]}"
  {
    echo "# Written by scripts/node.sh start: where pods on the real node reach the stack."
    echo "NODE_NAME=$NODE_NAME"
    echo "NODE_IP=$NODE_IP"
    printf '%s\n' "${lines[@]}"
  } >"$state/env.tmp"
  local p addr
  for p in "${pairs[@]}"; do
    addr=${p%%=*}
    wait_until 10 "relay $addr" bash -c "exec 3<>/dev/tcp/${addr%:*}/${addr##*:}"
  done
}

# The `kubernetes` Service (10.96.0.1:443) gets its endpoint: the API server's relay on the node's
# address (the API server runs --endpoint-reconciler-type=none; its certificate names
# $NODE_IP and 10.96.0.1). In-cluster clients (the operator and the runtime as pods) use it.
publish_apiserver_endpoint() {
  local port; port=$(port_of "$KUBE_SERVER")
  kubectl apply -f - >/dev/null <<EOF
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes-emporium-node
  namespace: default
  labels:
    kubernetes.io/service-name: kubernetes
    endpointslice.kubernetes.io/managed-by: emporium.dev-node
addressType: IPv4
endpoints:
- addresses: ["$NODE_IP"]
  conditions: {ready: true}
ports:
- {name: https, port: $port, protocol: TCP}
EOF
  # Written last: its presence says the node is up with everything above (tests look for it).
  mv "$state/env.tmp" "$state/env"
}

# --- metrics-server behind the aggregation layer ---------------------------------------------
# A host process like the relays (no image to build), listening on the node's address. The API
# server proxies metrics.k8s.io to it (APIService -> Service without selector -> EndpointSlice
# at $NODE_IP; --enable-aggregator-routing dials that endpoint). It scrapes only this node's
# kubelet (kwok's fake nodes have none), whose serving certificate the control plane's CA signed.
# Its user system:metrics-server gets the rights upstream's manifest grants.
start_metrics_server() {
  local port ca; port=$(free_port)
  ca=$(base64 -w0 "$root/.state/controlplane/pki/ca.crt")
  kubectl apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: emporium-node-metrics-server}
rules:
- {apiGroups: [""], resources: [nodes/metrics], verbs: [get]}
- {apiGroups: [""], resources: [pods, nodes], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: emporium-node-metrics-server}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: emporium-node-metrics-server}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "emporium-node-metrics-server:auth-delegator"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: emporium-node-metrics-server-auth-reader, namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec:
  ports: [{name: https, port: 443, targetPort: $port, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: metrics-server-emporium-node
  namespace: kube-system
  labels:
    kubernetes.io/service-name: metrics-server
    endpointslice.kubernetes.io/managed-by: emporium.dev-node
addressType: IPv4
endpoints:
- addresses: ["$NODE_IP"]
  conditions: {ready: true}
ports:
- {name: https, port: $port, protocol: TCP}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  service: {name: metrics-server, namespace: kube-system, port: 443}
  group: metrics.k8s.io
  version: v1beta1
  caBundle: $ca
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
  # Started after its RBAC exists: it reads the request-header CA once at start and exits
  # when it may not.
  start_bg metrics-server "$root/.bin/metrics-server" \
    --kubeconfig="$state/metrics-server.kubeconfig" \
    --authentication-kubeconfig="$state/metrics-server.kubeconfig" \
    --authorization-kubeconfig="$state/metrics-server.kubeconfig" \
    --bind-address="$NODE_IP" --secure-port="$port" \
    --tls-cert-file="$state/pki/metrics-server-serving.crt" --tls-private-key-file="$state/pki/metrics-server-serving.key" \
    --kubelet-certificate-authority="$root/.state/controlplane/pki/ca.crt" \
    --kubelet-preferred-address-types=InternalIP --kubelet-use-node-status-port \
    --node-selector=emporium.dev/node=real \
    --metric-resolution=15s --kubelet-request-timeout=5s
  kubectl wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=90s >/dev/null ||
    die "metrics.k8s.io not Available (see $state/logs/metrics-server.log)"
}

# The aggregated API goes first: registered without its server, it fails discovery, and with it
# every namespace deletion of the cluster.
remove_metrics_server_objects() {
  kubectl delete apiservice/v1beta1.metrics.k8s.io clusterrolebinding/emporium-node-metrics-server \
    clusterrolebinding/emporium-node-metrics-server:auth-delegator clusterrole/emporium-node-metrics-server \
    --ignore-not-found --timeout=10s >/dev/null 2>&1 || true
  kubectl -n kube-system delete rolebinding/emporium-node-metrics-server-auth-reader service/metrics-server \
    endpointslice/metrics-server-emporium-node --ignore-not-found --timeout=10s >/dev/null 2>&1 || true
}

# --- Traefik: the local ingress controller ------------------------------------------------------
# What the AWS Load Balancer Controller and its ALB are on EKS: Ingresses of the class
# emporium-local (the operator's --ingress-class, chart value alb.ingressClass) route each host to
# its Service's ready pod IPs (EndpointSlices, like the ALB's target-type ip). A host process like
# metrics-server, listening on 127.0.0.1 only (NODE_INGRESS_URL in .state/node/env); it reaches
# the pods over the bridge from the node's address. Its user system:emporium-ingress gets the
# rights Traefik's Kubernetes Ingress provider needs (read ingresses, classes, services, endpoint
# slices, nodes and secrets for TLS; write ingress status).
INGRESS_CLASS=emporium-local
start_ingress() {
  local port ping; port=$(free_port); ping=$(free_port)
  client_kubeconfig ingress system:emporium-ingress ""
  kubectl apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: emporium-node-ingress}
rules:
- {apiGroups: [""], resources: [services, secrets, nodes], verbs: [get, list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [get, list, watch]}
- {apiGroups: [networking.k8s.io], resources: [ingresses, ingressclasses], verbs: [get, list, watch]}
- {apiGroups: [networking.k8s.io], resources: [ingresses/status], verbs: [update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: emporium-node-ingress}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: emporium-node-ingress}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:emporium-ingress"}]
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: $INGRESS_CLASS}
spec: {controller: traefik.io/ingress-controller}
EOF
  start_bg ingress env KUBECONFIG="$state/ingress.kubeconfig" "$root/.bin/traefik" \
    --global.checkNewVersion=false --global.sendAnonymousUsage=false \
    --entryPoints.web.address="127.0.0.1:$port" \
    --entryPoints.ping.address="127.0.0.1:$ping" --ping=true --ping.entryPoint=ping \
    --providers.kubernetesIngress=true --providers.kubernetesIngress.ingressClass="$INGRESS_CLASS" \
    --providers.kubernetesIngress.throttleDuration=0s \
    --log.level=INFO --accessLog=true --accessLog.filePath="$state/logs/ingress-access.log"
  wait_until 60 "Traefik (the ingress)" curl -sf "http://127.0.0.1:$ping/ping" ||
    die "the ingress did not start (see $state/logs/ingress.log)"
  echo "NODE_INGRESS_URL=http://127.0.0.1:$port" >>"$state/env.tmp"
  echo "NODE_INGRESS_CLASS=$INGRESS_CLASS" >>"$state/env.tmp"
  echo "INGRESS=127.0.0.1:$port" >>"$state/ports"
}

remove_ingress_objects() {
  kubectl delete "ingressclass/$INGRESS_CLASS" clusterrolebinding/emporium-node-ingress clusterrole/emporium-node-ingress \
    --ignore-not-found --timeout=10s >/dev/null 2>&1 || true
}

setup_cgroups() {
  local c
  for c in $CGROUP_CONTROLLERS; do
    [ -d "/sys/fs/cgroup/$c" ] || continue
    mkdir -p "/sys/fs/cgroup/$c$CGROUP_ROOT"
  done
  # A new v1 cpuset starts empty; give it the parent's CPUs and memory nodes.
  cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset$CGROUP_ROOT/cpuset.cpus"
  cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset$CGROUP_ROOT/cpuset.mems"
}

write_configs() {
  local kubelet_healthz=$1 proxy_healthz=$2 proxy_metrics=$3
  cat >"$state/containerd.toml" <<EOF
version = 3
root = "$state/containerd/root"
state = "$state/containerd/state"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$state/containerd.sock"
[ttrpc]
  address = "$state/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins.'io.containerd.internal.v1.opt']
  path = "$state/containerd/opt"
[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "localhost/emporium/pause:local"
[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  # This machine withholds CAP_SYS_RESOURCE even from root, so no process may lower its
  # oom_score_adj (the kubelet asks -998 for sandboxes): keep them at containerd's own value.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$root/.bin/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$root/.bin/cni/"]
    conf_dir = "$state/cni/net.d"
    max_conf_num = 1
EOF
  cat >"$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (plus the unified hierarchy); kubelet 1.37 refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
containerRuntimeEndpoint: unix://$state/containerd.sock
imageServiceEndpoint: unix://$state/containerd.sock
address: $NODE_IP
port: 10250
readOnlyPort: 0
# A serving certificate from the control plane's CA, so metrics-server verifies the kubelet.
tlsCertFile: $state/pki/kubelet-serving.crt
tlsPrivateKeyFile: $state/pki/kubelet-serving.key
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz
# The kubelet API listens only on the bridge address. The API server has no kubelet client
# certificate, so logs/exec go through anonymous, always-allowed access on that address.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
# No iptables chains from the kubelet (kube-proxy runs in nftables mode in its own table).
makeIPTablesUtilChains: false
failSwapOn: false
podLogsDir: $state/pod-logs
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
maxPods: 110
serializeImagePulls: false
registerNode: true
# Only pods that tolerate it land here (the runtime's, through the operator's
# --runtime-node-selector, and the smoke test's): every other test's pods stay on kwok's nodes.
registerWithTaints:
- {key: emporium.dev/node, value: real, effect: NoSchedule}
evictionHard:
  memory.available: 200Mi
  nodefs.available: 2%
  imagefs.available: 2%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
nodeStatusReportFrequency: 10s
EOF
  cat >"$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: $state/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_SUBNET
nodePortAddresses: ["$NODE_IP/32"]
healthzBindAddress: 127.0.0.1:$proxy_healthz
metricsBindAddress: 127.0.0.1:$proxy_metrics
# Leave the machine's conntrack settings as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# Prints the other checkout whose node is running, if there is one.
other_owner() {
  [ -f "$OWNER_FILE" ] || return 1
  local other name pid; other=$(cat "$OWNER_FILE")
  [ "$other" != "$root" ] && [ -f "$other/.state/node/pids" ] || return 1
  while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then echo "$other"; return 0; fi
  done <"$other/.state/node/pids"
  return 1
}

refuse_if_other_owner() {
  local other
  if other=$(other_owner); then
    die "the real node runs for $other (only one per machine): stop it there (scripts/node.sh stop), or run without it (EMPORIUM_REAL_NODE=0)"
  fi
}

start() {
  [ "$(id -u)" = 0 ] || die "the node needs root"
  refuse_if_other_owner
  load_env
  stop_node
  echo "$root" >"$OWNER_FILE"
  # Every start is a fresh node, like the control plane's empty etcd: nothing of a previous run
  # (killed, say, without a stop) survives in containerd's or the kubelet's state.
  if awk -v s="$state/" 'index($2, s) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    die "mounts left under $state; not starting"
  fi
  rm -rf "$state/containerd" "$state/kubelet" "$state/pod-logs" "$state/cni"
  scripts/install-node.sh
  local t0=$SECONDS
  mkdir -p "$state/logs" "$state/pki" "$state/kubelet" "$state/pod-logs"
  : >"$pids"

  # Save what the kubelet will change, before anything else touches it.
  local s; for s in $KUBELET_SYSCTLS; do echo "$s=$(sysctl -n "$s")"; done >"$state/sysctl.saved"

  client_kubeconfig kubelet "system:node:$NODE_NAME" system:nodes
  client_kubeconfig kube-proxy system:kube-proxy ""
  client_kubeconfig metrics-server system:metrics-server ""
  server_cert kubelet-serving "system:node:$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
  server_cert metrics-server-serving metrics-server "DNS:metrics-server.kube-system.svc,IP:$NODE_IP"
  # The API server authorizes with RBAC only (no Node authorizer): bind the node's user to the
  # built-in system:node role. system:kube-proxy is bound to system:node-proxier already.
  kubectl create clusterrolebinding emporium-node --clusterrole=system:node --user="system:node:$NODE_NAME" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null

  setup_network
  setup_cgroups
  start_relays
  local kubelet_healthz proxy_healthz proxy_metrics
  kubelet_healthz=$(free_port); proxy_healthz=$(free_port); proxy_metrics=$(free_port)
  write_configs "$kubelet_healthz" "$proxy_healthz" "$proxy_metrics"
  echo "KUBELET_HEALTHZ=127.0.0.1:$kubelet_healthz" >"$state/ports"
  echo "PROXY_HEALTHZ=127.0.0.1:$proxy_healthz" >>"$state/ports"

  # containerd finds containerd-shim-runc-v2 on PATH.
  export PATH="$root/.bin:$PATH"
  start_bg containerd "$root/.bin/containerd" --config "$state/containerd.toml"
  wait_until 60 containerd ctr version
  local img
  for img in pause hello; do
    ctr images import --no-unpack=false "$root/.bin/node-images/$img.tar" >/dev/null
  done
  # The operator's and the runtime's images, when `make images` (scripts/images.sh) built them.
  for img in "$root"/.bin/images/*.tar; do
    if [ -f "$img" ]; then ctr images import --no-unpack=false "$img" >/dev/null; fi
  done
  log "containerd up, images imported ($((SECONDS - t0))s)"

  start_bg kubelet "$root/.bin/kubenode" kubelet \
    --config="$state/kubelet.yaml" \
    --kubeconfig="$state/kubelet.kubeconfig" \
    --root-dir="$state/kubelet" \
    --cert-dir="$state/kubelet/pki" \
    --hostname-override="$NODE_NAME" \
    --node-ip="$NODE_IP" \
    --node-labels="topology.kubernetes.io/zone=$NODE_ZONE,emporium.dev/node=real" \
    --v=1
  start_bg kube-proxy "$root/.bin/kubenode" kube-proxy --config="$state/kube-proxy.yaml" --v=1

  wait_until 120 "the kubelet's node" kubectl get node "$NODE_NAME"
  kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >/dev/null ||
    die "node $NODE_NAME not Ready (see $state/logs/kubelet.log)"
  wait_until 60 kube-proxy curl -sf "http://127.0.0.1:$proxy_healthz/healthz"
  start_metrics_server
  start_ingress
  publish_apiserver_endpoint
  log "node $NODE_NAME Ready in $((SECONDS - t0))s (zone $NODE_ZONE, pods on $POD_SUBNET via $BRIDGE, ingress on $(sed -n 's/^INGRESS=//p' "$state/ports"))"
  status
}

# Kill every process of ours still in a cgroup under CGROUP_ROOT (container processes).
kill_cgroup_procs() {
  local c=/sys/fs/cgroup/pids$CGROUP_ROOT pid
  [ -d "$c" ] || return 0
  for pid in $(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

stop_node() {
  local t0=$SECONDS
  if [ -f "$root/.state/env" ] && [ -f "$pids" ]; then load_env; remove_metrics_server_objects; fi
  # 1. Pods first, through the runtime, while containerd still runs: stops containers, runs the
  #    CNI DEL (veth, IP allocation) and removes network namespaces.
  if [ -f "$pids" ]; then
    local name pid
    while read -r name pid; do
      [ "$name" = containerd ] && continue
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done <"$pids"
    if [ -S "$state/containerd.sock" ] && ctr version >/dev/null 2>&1; then
      crictl stopp $(crictl pods -q 2>/dev/null) >/dev/null 2>&1 || true
      crictl rmp -f -a >/dev/null 2>&1 || true
      # Anything left outside the CRI (e.g. a failed start): kill and delete the tasks.
      local t
      for t in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
      sleep 0.5
      for t in $(ctr tasks ls -q 2>/dev/null); do ctr tasks delete -f "$t" >/dev/null 2>&1 || true; done
      for t in $(ctr containers ls -q 2>/dev/null); do ctr containers delete "$t" >/dev/null 2>&1 || true; done
    fi
    while read -r name pid; do
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done <"$pids"
    for _ in $(seq 50); do
      local alive=0
      while read -r name pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$pids"
      [ $alive = 0 ] && break
      sleep 0.2
    done
    while read -r name pid; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done <"$pids"
    rm -f "$pids"
  fi
  # 2. Shims are daemons of their own; ours are the ones running our binary.
  local p exe
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    case "$exe" in "$HOME"/.cache/emporium/bin/containerd-*/containerd-shim-runc-v2|"${EMPORIUM_CACHE_DIR:-/nonexistent}"/bin/containerd-*/containerd-shim-runc-v2)
      kill -KILL "${p#/proc/}" 2>/dev/null || true ;;
    esac
  done
  kill_cgroup_procs
  # 3. Mounts under .state/node (container rootfs, pod volumes, netns), deepest first.
  local m
  for m in $(awk -v s="$state/" 'index($2, s) == 1 { print $2 }' /proc/mounts | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  # 4. Network: the bridge (pod veths went with their namespaces), route, nftables tables.
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  local l
  for l in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do ip link del "$l" 2>/dev/null || true; done
  nft delete table inet "$NFT_TABLE" 2>/dev/null || true
  nft delete table ip kube-proxy 2>/dev/null || true
  nft delete table ip6 kube-proxy 2>/dev/null || true
  # 5. Cgroups, deepest first.
  local c
  for c in $CGROUP_CONTROLLERS; do
    [ -d "/sys/fs/cgroup/$c$CGROUP_ROOT" ] || continue
    find "/sys/fs/cgroup/$c$CGROUP_ROOT" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  # 6. Sysctls the kubelet changed.
  if [ -f "$state/sysctl.saved" ]; then
    local kv; while read -r kv; do sysctl -qw "$kv" || true; done <"$state/sysctl.saved"
    rm -f "$state/sysctl.saved"
  fi
  # 7. The Node object, if the control plane still runs.
  if [ -f "$root/.state/env" ]; then
    load_env
    kubectl delete node "$NODE_NAME" --ignore-not-found --timeout=10s >/dev/null 2>&1 || true
    kubectl delete clusterrolebinding emporium-node --ignore-not-found >/dev/null 2>&1 || true
    kubectl -n default delete endpointslice kubernetes-emporium-node --ignore-not-found >/dev/null 2>&1 || true
    remove_metrics_server_objects
    remove_ingress_objects
  fi
  rm -f "$state/env" "$state/env.tmp"
  rm -rf "$state/containerd/state" "$state/cni/ipam" "$state/kubelet/pods"
  if [ -f "$OWNER_FILE" ] && [ "$(cat "$OWNER_FILE")" = "$root" ]; then rm -f "$OWNER_FILE"; fi
  [ $((SECONDS - t0)) -gt 1 ] && log "node stopped in $((SECONDS - t0))s"
  return 0
}

leftovers() { # prints what the node left behind; empty output means clean
  set +e +o pipefail
  local c p exe
  [ -d "$state" ] && awk -v s="$state/" 'index($2, s) == 1 { print "mount " $2 }' /proc/mounts
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE"
  ip -o link show type veth 2>/dev/null | grep "master $BRIDGE" | sed 's/^/veth /'
  nft list tables 2>/dev/null | grep -E "$NFT_TABLE|kube-proxy" | sed 's/^/nft /'
  for c in $CGROUP_CONTROLLERS; do [ -d "/sys/fs/cgroup/$c$CGROUP_ROOT" ] && echo "cgroup $c$CGROUP_ROOT"; done
  ip route show "$SERVICE_CIDR" 2>/dev/null | sed 's/^/route /'
  ls "$state/containerd/state" 2>/dev/null | sed 's/^/containerd state /'
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    case "$exe" in "$root"/.bin/*|*/.cache/emporium/bin/containerd-*|*/.cache/emporium/bin/kubenode-*|*/.cache/emporium/bin/runc-*|*/.cache/emporium/bin/traefik-*|*/.cache/emporium/bin/metrics-server-*)
      echo "process ${p#/proc/} $exe" ;;
    esac
  done
  if [ -f "$root/.state/env" ]; then
    load_env
    kubectl get node "$NODE_NAME" --no-headers 2>/dev/null | sed 's/^/node object /'
    kubectl get apiservice v1beta1.metrics.k8s.io --no-headers 2>/dev/null | sed 's/^/apiservice /'
    kubectl get ingressclass "$INGRESS_CLASS" --no-headers 2>/dev/null | sed 's/^/ingressclass /'
  fi
  return 0
}

status() {
  if [ ! -f "$pids" ]; then echo "node: not running"; return 0; fi
  local name pid
  while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then echo "  $name: running (pid $pid)"; else echo "  $name: NOT running (see $state/logs/$name.log)"; fi
  done <"$pids"
  if [ -f "$root/.state/env" ]; then
    load_env
    kubectl get node "$NODE_NAME" -L topology.kubernetes.io/zone --no-headers 2>/dev/null | sed 's/^/  node: /' || true
  fi
}

case "${1:-}" in
  start) start ;;
  stop) refuse_if_other_owner; stop_node; log "stopped" ;;
  status) status ;;
  leftovers) leftovers ;;
  # Exit 0 when this checkout may start the node: root, and no other checkout's node runs.
  available) [ "$(id -u)" = 0 ] && ! other_owner >/dev/null ;;
  *) echo "usage: $0 start|stop|status|leftovers|available" >&2; exit 2 ;;
esac
