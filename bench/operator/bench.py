#!/usr/bin/env python3
"""Operator benchmark (issue 8): N dedicated Storefronts -> time until all Ready, versus the same
child objects server-side-applied directly at the same parallelism; peak RSS; API writes in steady
state and on a full resync. Uses the shared stack (.state/env); deletes everything it creates.

Env: N (default 100), CONCURRENCY (8), PROVIDERS ("none" or "aws": postgres + dynamodb on moto;
default "none aws" = both, one after the other), OPERATOR_BIN, STEADY_S (60), TIMEOUT_S (900),
OUT (bench/results/operator.json).
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import http.client
import json
import os
import platform
import re
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from countproxy import CountingProxy, diff as cp_diff, writes as cp_writes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
OUT = os.environ.get("OUT", os.path.join(BENCH, "results", "operator.json"))
KUBECTL = os.path.join(ROOT, ".bin", "kubectl") if os.path.exists(os.path.join(ROOT, ".bin", "kubectl")) else "kubectl"
CHILD_KINDS = ("namespaces,serviceaccounts,roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io,"
               "deployments.apps,services,horizontalpodautoscalers.autoscaling,poddisruptionbudgets.policy,"
               "ingresses.networking.k8s.io,networkpolicies.networking.k8s.io,resourcequotas,limitranges,secrets,configmaps")


def log(*a):
    print(f"[bench-operator {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def load_env() -> dict:
    env = {}
    for line in open(os.path.join(ROOT, ".state", "env")):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    os.environ.update(env)
    return env


def kubectl(*args, check=True, input=None) -> str:
    p = subprocess.run([KUBECTL, *args], capture_output=True, text=True, input=input)
    if check and p.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def loadavg():
    return [round(float(x), 2) for x in open("/proc/loadavg").read().split()[:3]]


def proc_mem(pid: int) -> dict:
    out = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = round(int(v.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def proc_cpu_s(pid: int) -> float:
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


class Api:
    """Minimal HTTPS client from the kubeconfig's client certificate (one connection per thread)."""

    def __init__(self):
        cfg = kubectl("config", "view", "--raw", "-o", "json")
        c = json.loads(cfg)
        cluster = c["clusters"][0]["cluster"]
        user = c["users"][0]["user"]
        self.dir = tempfile.mkdtemp(prefix="bench-op-")
        paths = {}
        for k in ("certificate-authority-data",):
            paths["ca"] = self._write("ca.pem", cluster[k])
        paths["cert"] = self._write("cert.pem", user["client-certificate-data"])
        paths["key"] = self._write("key.pem", user["client-key-data"])
        self.ctx = ssl.create_default_context(cafile=paths["ca"])
        self.ctx.load_cert_chain(paths["cert"], paths["key"])
        m = re.match(r"https://([^:/]+):(\d+)", cluster["server"])
        self.host, self.port = m.group(1), int(m.group(2))
        self.ctx.check_hostname = False

    def _write(self, name, b64):
        p = os.path.join(self.dir, name)
        with open(p, "wb") as f:
            f.write(base64.b64decode(b64))
        os.chmod(p, 0o600)
        return p

    def conn(self):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)

    def raw(self, path: str) -> str:
        c = self.conn()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return body


PLURAL = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "Role": "roles", "RoleBinding": "rolebindings",
          "Deployment": "deployments", "Service": "services", "HorizontalPodAutoscaler": "horizontalpodautoscalers",
          "PodDisruptionBudget": "poddisruptionbudgets", "Ingress": "ingresses", "NetworkPolicy": "networkpolicies",
          "ResourceQuota": "resourcequotas", "LimitRange": "limitranges", "Secret": "secrets", "ConfigMap": "configmaps"}


def obj_path(o: dict) -> str:
    av, kind, md = o["apiVersion"], o["kind"], o["metadata"]
    base = f"/api/{av}" if "/" not in av else f"/apis/{av}"
    ns = f"/namespaces/{md['namespace']}" if md.get("namespace") else ""
    return f"{base}{ns}/{PLURAL[kind]}/{md['name']}"


def apiserver_counts(api: Api) -> dict:
    """apiserver_request_total summed by (verb, resource) — every client's requests."""
    out: dict[str, float] = {}
    for line in api.raw("/metrics").splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        key = f"{labels.get('verb')} {labels.get('group', '')}/{labels.get('resource')}"
        out[key] = out.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return out


def diff_counts(a: dict, b: dict) -> dict:
    return {k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0) > 0}


def operator_metrics(port: int) -> dict:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def metric(m: dict, suffix: str) -> float:
    return sum(v for k, v in m.items() if k.split("{")[0].endswith(suffix))


def storefront_manifest(name: str, run: str) -> dict:
    return {"apiVersion": "emporium.dev/v1alpha1", "kind": "Storefront",
            "metadata": {"name": name, "labels": {"emporium.dev/bench": run}},
            "spec": {"displayName": f"Bench {name}", "plan": "premium", "domains": [f"{name}.localhost"],
                     "themeColor": "#0f766e", "database": {"deletionPolicy": "Delete"},
                     "payments": {"provider": "manual"}}}


def ready_count(run: str) -> tuple[int, int, dict]:
    items = json.loads(kubectl("get", "storefronts.emporium.dev", "-l", f"emporium.dev/bench={run}", "-o", "json"))["items"]
    ready, phases = 0, {}
    for it in items:
        conds = {c["type"]: c["status"] for c in it.get("status", {}).get("conditions", [])}
        ph = it.get("status", {}).get("phase", "-")
        phases[ph] = phases.get(ph, 0) + 1
        ready += conds.get("Ready") == "True"
    return ready, len(items), phases


def children(tenants: set[str]) -> list[dict]:
    items = json.loads(kubectl("get", CHILD_KINDS, "-A", "-l", "emporium.dev/tenant", "-o", "json"))["items"]
    return [o for o in items if o["metadata"].get("labels", {}).get("emporium.dev/tenant") in tenants]


def rv_map(objs: list[dict]) -> dict:
    return {f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for o in objs}


def storefront_rvs(run: str) -> dict:
    items = json.loads(kubectl("get", "storefronts.emporium.dev", "-l", f"emporium.dev/bench={run}", "-o", "json"))["items"]
    return {f"Storefront//{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items}


class Operator:
    def __init__(self, binary, run, providers, concurrency, logdir):
        self.port = free_port()
        args = [binary, f"--http-addr=127.0.0.1:{self.port}", "--log-format=json", "--readiness-gate=applied",
                f"--storefront-selector=emporium.dev/bench={run}", f"--name-prefix=bench{run}",
                f"--pool-namespace=bench-pool-{run}", f"--concurrency={concurrency}"]
        if providers == "aws":
            args += ["--database-provider=postgres", "--tables-provider=dynamodb", "--queues-provider=sqs",
                     f"--postgres-admin-url={os.environ['DATABASE_URL']}",
                     f"--postgres-password-key={secrets.token_hex(16)}",
                     "--postgres-tenant-host=127.0.0.1", f"--postgres-tenant-port={os.environ['PGPORT']}"]
        else:
            args += ["--database-provider=none", "--tables-provider=none", "--queues-provider=none"]
        self.args, self.logdir = args, logdir
        self.starts = 0
        self.start()

    def start(self, proxy_port=None):
        self.starts += 1
        self.log = open(os.path.join(self.logdir, f"operator-{self.starts}.log"), "w")
        env = dict(os.environ)
        if proxy_port:
            kc = os.path.join(self.logdir, "kubeconfig-proxy")
            with open(kc, "w") as f:
                json.dump({"apiVersion": "v1", "kind": "Config",
                           "clusters": [{"name": "p", "cluster": {"server": f"http://127.0.0.1:{proxy_port}"}}],
                           "users": [{"name": "p", "user": {}}],
                           "contexts": [{"name": "p", "context": {"cluster": "p", "user": "p"}}],
                           "current-context": "p"}, f)
            env["KUBECONFIG"] = kc
        self.p = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except OSError:
                if self.p.poll() is not None:
                    raise RuntimeError(f"operator exited {self.p.returncode}; see {self.log.name}")
                time.sleep(0.2)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def clean_for_apply(o: dict, ns_map: dict) -> dict:
    md = o["metadata"]
    keep = {k: md[k] for k in ("name", "namespace", "labels", "annotations") if k in md}
    ann = {k: v for k, v in keep.get("annotations", {}).items() if not k.startswith(("kubectl.kubernetes.io/", "deployment.kubernetes.io/"))}
    if ann:
        keep["annotations"] = ann
    else:
        keep.pop("annotations", None)
    n = {k: v for k, v in o.items() if k not in ("metadata", "status")}
    n["metadata"] = keep
    if o["kind"] == "Service":
        for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy", "sessionAffinity"):
            n["spec"].pop(k, None)
    if o["kind"] == "Namespace":
        n.pop("spec", None)
    s = json.dumps(n)
    for old, new in ns_map.items():
        s = s.replace(f'"{old}"', f'"{new}"')
    return json.loads(s)


def baseline(api: Api, objs: list[dict], concurrency: int) -> dict:
    """Server-side apply every tenant's children (namespace first), `concurrency` tenants at once."""
    by_tenant: dict[str, list[dict]] = {}
    ns_map = {}
    for o in objs:
        t = o["metadata"]["labels"]["emporium.dev/tenant"]
        by_tenant.setdefault(t, []).append(o)
        if o["kind"] == "Namespace":
            ns_map[o["metadata"]["name"]] = "bl-" + o["metadata"]["name"]
    order = {k: i for i, k in enumerate(["Namespace", "ServiceAccount", "ResourceQuota", "LimitRange", "Role", "RoleBinding",
                                         "Secret", "ConfigMap", "Service", "Deployment", "HorizontalPodAutoscaler",
                                         "PodDisruptionBudget", "NetworkPolicy", "Ingress"])}
    plans = {t: sorted((clean_for_apply(o, ns_map) for o in os_), key=lambda x: order.get(x["kind"], 99))
             for t, os_ in by_tenant.items()}

    def apply_tenant(t):
        c = api.conn()
        n = 0
        for o in plans[t]:
            body = json.dumps(o)
            c.request("PATCH", obj_path(o) + "?fieldManager=bench-baseline&force=true", body=body,
                      headers={"Content-Type": "application/apply-patch+yaml"})
            r = c.getresponse()
            data = r.read()
            if r.status >= 300:
                raise RuntimeError(f"SSA {obj_path(o)}: {r.status} {data[:300]!r}")
            n += 1
        c.close()
        return n

    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(concurrency) as ex:
        applied = sum(ex.map(apply_tenant, list(plans)))
    secs = time.monotonic() - t0
    return {"seconds": round(secs, 2), "objects": applied, "tenants": len(plans),
            "namespaces": list(ns_map.values()), "kinds": sorted({o["kind"] for o in objs})}


def wait_gone(kind: str, selector: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not json.loads(kubectl("get", kind, "-l", selector, "-o", "json"))["items"]:
            return True
        time.sleep(2)
    return False


def run_one(api: Api, binary: str, n: int, concurrency: int, providers: str, steady_s: int, timeout_s: int) -> dict:
    run = secrets.token_hex(3)
    logdir = os.path.join(BENCH, "results", "raw", f"operator-{providers}-{n}-{run}")
    os.makedirs(logdir, exist_ok=True)
    names = [f"ob{run}-{i:04d}" for i in range(n)]
    res = {"providers": providers, "n": n, "concurrency": concurrency, "run": run, "loadavg_start": loadavg()}
    log(f"run {run}: {n} dedicated Storefronts, providers={providers}, concurrency={concurrency}")
    op = Operator(binary, run, providers, concurrency, logdir)
    bl_namespaces = []
    try:
        res["rss_idle_mib"] = proc_mem(op.p.pid)
        manifest = "\n---\n".join(json.dumps(storefront_manifest(nm, run)) for nm in names)
        cpu0 = proc_cpu_s(op.p.pid)
        t0 = time.monotonic()
        kubectl("apply", "--server-side", "-f", "-", input=manifest)
        res["create_apply_s"] = round(time.monotonic() - t0, 2)
        samples, ready, total = [], 0, 0
        while time.monotonic() - t0 < timeout_s:
            ready, total, phases = ready_count(run)
            el = time.monotonic() - t0
            mem = proc_mem(op.p.pid)
            samples.append({"t": round(el, 1), "ready": ready, "rss_mib": mem.get("VmRSS")})
            if ready == n:
                break
            if op.p.poll() is not None:
                raise RuntimeError(f"operator died: see {logdir}")
            if len(samples) % 10 == 0:
                log(f"  {el:.0f}s: {ready}/{n} Ready {phases} RSS {mem.get('VmRSS')} MiB load {loadavg()[0]}")
            time.sleep(1)
        res["all_ready_s"] = round(time.monotonic() - t0, 2) if ready == n else None
        res["ready_at_end"] = ready
        res["operator_cpu_s_to_ready"] = round(proc_cpu_s(op.p.pid) - cpu0, 2)
        res["ready_curve"] = samples[:: max(1, len(samples) // 40)]
        m_ready = operator_metrics(op.port)
        res["reconciles_to_ready"] = metric(m_ready, "reconciles_total")
        res["operator_writes_to_ready"] = {k.split("{", 1)[1].rstrip("}"): v for k, v in m_ready.items()
                                           if k.startswith("emporium_operator_api_writes_total{")}
        res["rss_after_ready_mib"] = proc_mem(op.p.pid)
        res["loadavg_at_ready"] = loadavg()
        log(f"  all Ready: {res['all_ready_s']} s; mem {res['rss_after_ready_mib']}")

        tenants = set(names)
        objs = children(tenants)
        res["children"] = {"objects": len(objs), "per_tenant": round(len(objs) / n, 1),
                           "kinds": sorted({o["kind"] for o in objs})}

        # A full resync, counted: restart the operator behind the counting proxy. Its first pass
        # reconciles every Storefront again (the same pass the 300 s RESYNC timer triggers), after
        # the initial LIST + WATCH. Then STEADY_S seconds of steady state, counted the same way.
        op.stop()
        proxy = CountingProxy(api)
        rv0 = {**rv_map(children(tenants)), **storefront_rvs(run)}
        t_r = time.monotonic()
        op.start(proxy_port=proxy.port)
        recs = 0
        while time.monotonic() - t_r < 300:
            recs = metric(operator_metrics(op.port), "reconciles_total")
            if recs >= n:
                break
            time.sleep(0.5)
        resync_s = time.monotonic() - t_r
        time.sleep(3)
        c_resync = proxy.snapshot()
        m_resync = operator_metrics(op.port)
        rv1 = {**rv_map(children(tenants)), **storefront_rvs(run)}
        changed = [k for k in rv0 if rv1.get(k) != rv0[k]]
        w = cp_writes(c_resync)
        res["resync"] = {
            "seconds_to_n_reconciles": round(resync_s, 1), "reconciles": recs,
            "operator_requests": c_resync, "operator_writes": w,
            "requests_per_tenant": round(sum(c_resync.values()) / n, 2),
            "writes_per_tenant": round(sum(w.values()) / n, 2),
            "objects_with_new_resource_version_any_writer": len(changed), "changed_sample": changed[:6],
            # The operator's own counters (emporium_operator_api_writes_total, _applies_skipped_total).
            "operator_counted_writes": metric(m_resync, "api_writes_total"),
            "applies_skipped": metric(m_resync, "applies_skipped_total"),
        }
        log(f"  resync: {recs} reconciles in {resync_s:.1f}s; requests {c_resync}")
        m0, cpu_0 = operator_metrics(op.port), proc_cpu_s(op.p.pid)
        t_s = time.monotonic()
        time.sleep(steady_s)
        dur = time.monotonic() - t_s
        c_steady = cp_diff(c_resync, proxy.snapshot())
        w = cp_writes(c_steady)
        res["steady"] = {
            "seconds": round(dur, 1),
            "operator_reconciles": metric(operator_metrics(op.port), "reconciles_total") - metric(m0, "reconciles_total"),
            "operator_cpu_s": round(proc_cpu_s(op.p.pid) - cpu_0, 2),
            "operator_requests": c_steady, "operator_writes": w,
            "requests_per_tenant": round(sum(c_steady.values()) / n, 3),
            "writes_per_tenant": round(sum(w.values()) / n, 3),
            "rss_mib": proc_mem(op.p.pid),
        }
        log(f"  steady {dur:.0f}s: requests {c_steady}")
        op.stop()
        proxy.close()
        op.start()

        # Baseline: the same children, fresh namespaces, SSA directly at the same parallelism.
        objs = children(tenants)
        bl = baseline(api, objs, concurrency)
        bl_namespaces = bl.pop("namespaces")
        res["baseline"] = bl
        res["ratio"] = round(res["all_ready_s"] / bl["seconds"], 2) if res["all_ready_s"] else None
        log(f"  baseline SSA: {bl['objects']} objects in {bl['seconds']} s; ratio {res['ratio']}")
    finally:
        # Cleanup: Storefronts (deletionPolicy Delete) through the operator's finalizer, then baseline namespaces.
        t_c = time.monotonic()
        kubectl("delete", "storefronts.emporium.dev", "-l", f"emporium.dev/bench={run}", "--wait=false", check=False)
        if op.p.poll() is not None:
            op.start()
        gone = wait_gone("storefronts.emporium.dev", f"emporium.dev/bench={run}", 600)
        res["cleanup"] = {"storefronts_gone": gone, "seconds": round(time.monotonic() - t_c, 1)}
        res["rss_end_mib"] = proc_mem(op.p.pid)
        op.stop()
        for i in range(0, len(bl_namespaces), 50):
            kubectl("delete", "namespace", "--wait=false", *bl_namespaces[i:i + 50], check=False)
        kubectl("delete", "namespace", f"bench-pool-{run}", "--ignore-not-found", "--wait=false", check=False)
        res["loadavg_end"] = loadavg()
        log(f"  cleanup: {res['cleanup']}")
    return res


def machine(binary: str) -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next(int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    ver = json.loads(kubectl("version", "-o", "json"))
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "operator/"], capture_output=True, text=True).stdout.strip())
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_mib": mem, "kernel": platform.release(),
            "kube_apiserver": ver.get("serverVersion", {}).get("gitVersion"), "binary": binary,
            "release": "/release/" in binary, "git_commit": git, "operator_dirty": dirty}


def main() -> int:
    load_env()
    binary = os.environ.get("OPERATOR_BIN") or os.path.expanduser("~/.cache/emporium/target/release/emporium-operator")
    n_list = [int(x) for x in os.environ.get("N", "100").split()]
    conc = int(os.environ.get("CONCURRENCY", "8"))
    providers = os.environ.get("PROVIDERS", "none aws").split()
    steady = int(os.environ.get("STEADY_S", "60"))
    timeout = int(os.environ.get("TIMEOUT_S", "900"))
    kubectl("apply", "--server-side", "-f", os.path.join(ROOT, "crds"))
    kubectl("wait", "--for=condition=Established", "crd/storefronts.emporium.dev", "crd/storefrontplans.emporium.dev", "--timeout=60s")
    kubectl("apply", "--server-side", "-f", os.path.join(ROOT, "examples", "plans.yaml"))
    api = Api()
    result = json.load(open(OUT)) if os.path.exists(OUT) and os.environ.get("APPEND") else {"runs": []}
    result.update({"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(binary),
                   "command": ("OPERATOR_BIN=" + os.environ["OPERATOR_BIN"] + " " if os.environ.get("OPERATOR_BIN") else "") + "make -C bench operator  (N=" + " ".join(map(str, n_list)) + f" CONCURRENCY={conc} PROVIDERS=\"{' '.join(providers)}\")"})
    for prov in providers:
        for n in n_list:
            r = run_one(api, binary, n, conc, prov, steady, timeout)
            result["runs"] = [x for x in result["runs"] if not (x["providers"] == prov and x["n"] == n)] + [r]
            os.makedirs(os.path.dirname(OUT), exist_ok=True)
            json.dump(result, open(OUT, "w"), indent=1)
    log(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
