#!/usr/bin/env bash
# Smoke test of the real node (opt-in; docs/real-node.md). With the stack running
# (scripts/stack.sh start), it starts the node if it is not up (and then stops it again at the
# end), and checks that:
#   - a Pod from the locally built image localhost/emporium/hello:local, under `restricted` Pod
#     Security (non-root, read-only root file system, no capabilities, RuntimeDefault seccomp),
#     becomes Running and Ready on the real node (zone local-real);
#   - the host reaches it over HTTP through its pod IP and through a ClusterIP Service
#     (kube-proxy, nftables); a pod reaches the stack (moto) at the node's address;
#   - a privileged Pod is refused in that namespace;
#   - after `node.sh stop` nothing is left (no mount, bridge, nftables table, cgroup, process).
# Bounded: every wait has a timeout; the namespace is deleted on exit, also on failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
ns=node-smoke
t0=$SECONDS
passed=0 failed=0
log() { printf '[smoke] %s\n' "$*" >&2; }
ok() { passed=$((passed + 1)); log "ok: $*"; }
fail() { failed=$((failed + 1)); log "FAIL: $*"; }

[ -f .state/env ] || { log "no .state/env: run scripts/stack.sh start first"; exit 1; }
KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' .state/env); export KUBECONFIG
kubectl() { .bin/kubectl "$@"; }

started_node=0
node_status=$(scripts/node.sh status)
if ! grep -q 'kubelet: running' <<<"$node_status"; then
  scripts/node.sh start
  started_node=1
fi

cleanup() {
  trap - EXIT
  set +e
  kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 || true
  if [ $started_node = 1 ]; then
    scripts/node.sh stop
    left=$(scripts/node.sh leftovers)
    if [ -n "$left" ]; then fail "left behind after stop:"; printf '  %s\n' "$left" >&2; else ok "nothing left after node.sh stop"; fi
  fi
  log "$((SECONDS - t0))s"
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}
trap 'cleanup' EXIT

kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=60s >/dev/null
kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: node-smoke
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
---
apiVersion: v1
kind: Pod
metadata:
  name: hello
  namespace: node-smoke
  labels: {app: hello}
spec:
  nodeSelector: {topology.kubernetes.io/zone: local-real}
  tolerations: [{key: emporium.dev/node, operator: Equal, value: real, effect: NoSchedule}]
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 5
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: hello
    image: localhost/emporium/hello:local
    imagePullPolicy: Never
    ports: [{name: http, containerPort: 8080}]
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
    readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 2}
    livenessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 10}
    resources:
      requests: {cpu: 10m, memory: 16Mi}
      limits: {cpu: 200m, memory: 64Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: hello
  namespace: node-smoke
spec:
  selector: {app: hello}
  ports: [{name: http, port: 80, targetPort: http}]
EOF

t_pod=$SECONDS
if kubectl -n "$ns" wait --for=condition=Ready pod/hello --timeout=120s >/dev/null; then
  ok "pod Ready on $(kubectl -n "$ns" get pod hello -o jsonpath='{.spec.nodeName}') in $((SECONDS - t_pod))s"
else
  fail "pod not Ready within 120s"
  kubectl -n "$ns" describe pod hello | tail -20 >&2 || true
  exit 1
fi

node=$(kubectl -n "$ns" get pod hello -o jsonpath='{.spec.nodeName}')
zone=$(kubectl get node "$node" -o jsonpath='{.metadata.labels.topology\.kubernetes\.io/zone}')
[ "$zone" = local-real ] && ok "node $node is in zone local-real" || fail "pod on node $node in zone '$zone'"

pod_ip=$(kubectl -n "$ns" get pod hello -o jsonpath='{.status.podIP}')
body=$(curl -sf --max-time 5 "http://$pod_ip:8080/" || true)
case "$body" in "hello from hello (uid 65532)"*) ok "pod IP $pod_ip answers: $body" ;; *) fail "pod IP $pod_ip answered '$body'" ;; esac

cluster_ip=$(kubectl -n "$ns" get service hello -o jsonpath='{.spec.clusterIP}')
body=""
for _ in $(seq 50); do # kube-proxy programs the Service within a second or two
  body=$(curl -sf --max-time 2 "http://$cluster_ip/" || true)
  [ -n "$body" ] && break
  sleep 0.3
done
case "$body" in "hello from hello"*) ok "ClusterIP $cluster_ip:80 answers: $body" ;; *) fail "ClusterIP $cluster_ip answered '$body'" ;; esac

# Pod -> ClusterIP -> pod, through the bridge (forwarding on emp0 only) and kube-proxy; the
# client's output comes back through `kubectl logs` (API server -> kubelet).
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $ns}
spec:
  nodeSelector: {topology.kubernetes.io/zone: local-real}
  tolerations: [{key: emporium.dev/node, operator: Equal, value: real, effect: NoSchedule}]
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: client
    image: localhost/emporium/hello:local
    imagePullPolicy: Never
    args: ["-get", "http://$cluster_ip/"]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
EOF
phase=""
for _ in $(seq 100); do
  phase=$(kubectl -n "$ns" get pod client -o jsonpath='{.status.phase}' 2>/dev/null || true)
  case "$phase" in Succeeded|Failed) break ;; esac
  sleep 0.3
done
out=$(kubectl -n "$ns" logs client 2>&1 || true)
case "$phase $out" in "Succeeded 200 hello from hello"*) ok "pod -> ClusterIP -> pod: $out" ;; *) fail "client pod $phase: $out" ;; esac

# Pod -> the stack at the node's address (scripts/node.sh relays it from 127.0.0.1): moto here;
# the runtime's test (tests/tests/real_node.rs) goes through PostgreSQL, Redis and the API server.
moto_url=$(sed -n 's/^NODE_AWS_ENDPOINT_URL=//p' .state/node/env)
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: stack-client, namespace: $ns}
spec:
  nodeSelector: {topology.kubernetes.io/zone: local-real}
  tolerations: [{key: emporium.dev/node, operator: Equal, value: real, effect: NoSchedule}]
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: client
    image: localhost/emporium/hello:local
    imagePullPolicy: Never
    args: ["-get", "$moto_url/moto-api/"]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
EOF
phase=""
for _ in $(seq 100); do
  phase=$(kubectl -n "$ns" get pod stack-client -o jsonpath='{.status.phase}' 2>/dev/null || true)
  case "$phase" in Succeeded|Failed) break ;; esac
  sleep 0.3
done
out=$(kubectl -n "$ns" logs stack-client 2>&1 | head -c 60 || true)
case "$phase $out" in "Succeeded 200 "*) ok "pod -> $moto_url (moto, relayed to loopback): 200" ;; *) fail "stack client pod $phase: $out" ;; esac

# The root file system is read-only and the user is not root: the container runtime did it.
ro=$(.bin/crictl --runtime-endpoint "unix://$root/.state/node/containerd.sock" inspect \
  "$(.bin/crictl --runtime-endpoint "unix://$root/.state/node/containerd.sock" ps -q --name hello 2>/dev/null | head -1)" 2>/dev/null |
  python3 -c 'import json,sys; s=json.load(sys.stdin)["info"]["runtimeSpec"]; print(s["root"].get("readonly", False), s["process"]["user"]["uid"])' || true)
[ "$ro" = "True 65532" ] && ok "OCI spec: readonly root, uid 65532" || fail "OCI spec says '$ro'"

if kubectl -n "$ns" run privileged --image=localhost/emporium/hello:local --image-pull-policy=Never \
  --overrides='{"spec":{"containers":[{"name":"privileged","image":"localhost/emporium/hello:local","securityContext":{"privileged":true}}]}}' \
  >/dev/null 2>&1; then
  fail "a privileged pod was admitted under restricted"
else
  ok "a privileged pod is refused under restricted Pod Security"
fi
