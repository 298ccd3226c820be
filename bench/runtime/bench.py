#!/usr/bin/env python3
"""Runtime benchmark of issue 8: one storefront runtime, many tenants, wrk against it.

Run through `make -C bench runtime` (bench/runtime/run.sh installs wrk and dynalite and builds
the release binary first). Everything this script starts (dynalite, the runtime) listens on
127.0.0.1 only and is stopped on exit, also on Ctrl-C / SIGTERM.

Data path (see docs/benchmarks.md, "How the data is loaded"):
  1. dynalite (in memory) with tables this script creates (no --create-tables: dynalite lacks
     UpdateTimeToLive);
  2. a first runtime instance seeds every tenant's categories and first products through the
     merchant admin API;
  3. the bulk of the products is written straight into the catalog table with BatchWriteItem in
     the runtime's item format (pk `<tenant>#CATALOG`, sk `PRODUCT#<id>`, `doc` = product JSON),
     because each admin write reloads the tenant's whole catalog (O(n) per write, O(n^2) to load);
  4. a fresh runtime instance starts, warms every catalog, and the harness checks through the
     shopper API that every tenant shows exactly the expected number of products;
  5. wrk scenarios; 6. results JSON.

Scale knobs (environment): BENCH_TENANTS (100), BENCH_PRODUCTS (1000), BENCH_BIG (20000, 0 to
skip), BENCH_DURATION (10 s per scenario), BENCH_CONNS ("1 8 64 512"), BENCH_OUT
(bench/results/runtime.json).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)

TENANTS = int(os.environ.get("BENCH_TENANTS", "100"))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "1000"))
BIG = int(os.environ.get("BENCH_BIG", "20000"))
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNS = [int(c) for c in os.environ.get("BENCH_CONNS", "1 8 64 512").split()]
OUT = os.environ.get("BENCH_OUT", os.path.join(BENCH, "results", "runtime.json"))
RAW = os.path.join(BENCH, "results", "raw")
CATEGORIES = 10
API_PRODUCTS = 3  # per tenant, created through the admin API before the bulk load
CARTS_PER_TENANT = 20
SEED = 8
CK_CARTS = int(os.environ.get("BENCH_CHECKOUT_CARTS", "8000"))  # 0 skips checkout
CK_TENANTS = 10
CK_STOCK_PCT = 60  # stock of the SKU every cart buys, in % of the tenant's carts: it runs out mid-run
CK_CONNS = 64
HISTORY = 5  # runs kept in bench/results/history/
# Scenarios to profile with `perf record` while they run, e.g. "product_list:64 search:64".
PERF = os.environ.get("BENCH_PERF", "product_list:64 search_uncached:64 add_to_cart:8").split()

ADJ = ["red", "blue", "green", "black", "white", "vintage", "classic", "modern", "rugged", "soft",
       "light", "heavy", "organic", "premium", "compact", "urban", "alpine", "coastal", "silent", "bright"]
MAT = ["wool", "cotton", "linen", "leather", "denim", "canvas", "silk", "bamboo", "steel", "oak",
       "walnut", "ceramic", "glass", "copper", "hemp", "cashmere", "nylon", "suede", "velvet", "cork"]
NOUN = ["jacket", "shirt", "scarf", "boots", "backpack", "lamp", "mug", "chair", "table", "blanket",
        "wallet", "belt", "hat", "gloves", "sweater", "kettle", "bowl", "notebook", "pen", "watch"]
SIZES = ["S", "M", "L"]
QUERIES = ["jacket", "wool", "leather boots", "vintage lamp", "organic cotton shirt", "jakcet",
           "cashmere sweater", "oak table", "blue", "premium ceramic mug", "backpak", "silk scarf"]

procs: list[subprocess.Popen] = []
secret_files: list[str] = []  # removed on exit, whatever happens
cleanups: list = []  # callables run on exit


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], logfile: str, env: dict | None = None) -> subprocess.Popen:
    out = open(logfile, "wb")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True, cwd=ROOT)
    procs.append(p)
    return p


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    if p in procs:
        procs.remove(p)


def stop_all() -> None:
    for p in list(procs):
        stop(p)
    for f in secret_files:
        if os.path.exists(f):
            os.remove(f)
    while cleanups:
        try:
            cleanups.pop()()
        except Exception as e:  # noqa: BLE001
            log(f"cleanup failed: {e}")


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------------------------
# DynamoDB (dynalite) over its JSON protocol: no SDK needed, dynalite checks only that the
# request is shaped like a signed one.

class Dynamo:
    def __init__(self, port: int):
        self.port = port
        self.local = threading.local()

    def call(self, op: str, body: dict, _retry: bool = False) -> dict:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "X-Amz-Target": f"DynamoDB_20120810.{op}",
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Date": now,
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/{now[:8]}/us-east-1/dynamodb/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        }
        try:
            conn.request("POST", "/", json.dumps(body), headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.local.conn = None
            if _retry:
                raise
            # An idle keep-alive connection dynalite closed meanwhile: once more on a new one.
            return self.call(op, body, _retry=True)
        out = json.loads(data or b"{}")
        if resp.status != 200:
            raise RuntimeError(f"dynamodb {op}: {resp.status} {out}")
        return out

    def create_table(self, name: str) -> None:
        self.call("CreateTable", {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                     {"AttributeName": "sk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "sk", "KeyType": "RANGE"}],
        })
        for _ in range(100):
            if self.call("DescribeTable", {"TableName": name})["Table"]["TableStatus"] == "ACTIVE":
                return
            time.sleep(0.05)
        raise RuntimeError(f"table {name} not ACTIVE")

    def batch_put(self, table: str, items: list[dict]) -> None:
        pending = [{"PutRequest": {"Item": it}} for it in items]
        while pending:
            out = self.call("BatchWriteItem", {"RequestItems": {table: pending}})
            pending = out.get("UnprocessedItems", {}).get(table, [])
            if pending:
                time.sleep(0.05)


def sqs_call(endpoint: str, op: str, body: dict) -> dict:
    """SQS (the shared stack's moto) over the JSON protocol."""
    u = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    conn.request("POST", "/", json.dumps(body), {
        "X-Amz-Target": f"AmazonSQS.{op}", "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Date": now,
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/{now[:8]}/us-east-1/sqs/aws4_request, "
                         "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"sqs {op}: {resp.status} {data[:300]!r}")
    return json.loads(data or b"{}")


def sqs_queue_name(tenant: str) -> str:
    """storefront/src/workers/relay.rs queue_name()."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "-" for c in tenant)
    return f"emporium-{safe}"[: 80 - len("-order-events")] + "-order-events"


# ---------------------------------------------------------------------------------------------
# HTTP to the runtime

class Api:
    def __init__(self, port: int):
        self.port = port
        self.local = threading.local()

    def req(self, method: str, path: str, host: str, body=None, token: str | None = None):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Host": host}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body, headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.local.conn = None
            raise
        return resp.status, (json.loads(data) if data and data[:1] in b"{[" else data)


# ---------------------------------------------------------------------------------------------
# The data set

class Tenant:
    def __init__(self, tid: str, products: int, tables: dict, tier: str):
        self.id = tid
        self.host = f"{tid}.bench.localhost"
        self.n = products
        self.tables = tables
        self.tier = tier
        self.admin_key = f"bench-admin-{tid}-{uuid.uuid4().hex}"
        self.product_ids: list[str] = []  # sample, for product-page requests
        self.skus: list[str] = []         # sample, for add-to-cart requests
        self.carts: list[str] = []

    def config(self, dsn: str) -> dict:
        return {"tenantId": self.id, "displayName": f"Bench {self.id}", "domains": [self.host],
                "tier": self.tier, "databaseUrl": dsn, "tables": self.tables,
                "adminKey": self.admin_key, "payments": {"provider": "manual"}}


def category_ids() -> list[str]:
    return [f"cat-{i}" for i in range(CATEGORIES)]


def draft(rng: random.Random, i: int) -> dict:
    a, m, n_ = rng.choice(ADJ), rng.choice(MAT), rng.choice(NOUN)
    colour = rng.choice(ADJ[:5])
    base = rng.randrange(500, 50000)
    return {
        "title": f"{a.capitalize()} {m} {n_} {i}",
        "description": f"A {a} {n_} made of {m}. Item number {i}; ships in two days, "
                       f"easy returns, pairs well with a {rng.choice(MAT)} {rng.choice(NOUN)}.",
        "categories": [f"cat-{rng.randrange(CATEGORIES)}"],
        "variants": [{"sku": f"P{i:05d}-{s}", "price": {"amount_minor": base + k * 250, "currency": "EUR"},
                      "attributes": {"size": s, "colour": colour},
                      "images": [f"https://img.example/{i}/{s}.jpg"]}
                     for k, s in enumerate(SIZES)],
    }


def product_doc(d: dict, created: dt.datetime) -> tuple[str, dict]:
    pid = str(uuid.uuid4())
    ts = created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    doc = dict(d, id=pid, created_at=ts, updated_at=ts)
    return pid, doc


# ---------------------------------------------------------------------------------------------

def wait_http(api: Api, proc: subprocess.Popen, logfile: str, timeout: float = 60) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"runtime exited ({proc.returncode}); see {logfile}")
        try:
            if api.req("GET", "/healthz", "localhost")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("runtime did not answer /healthz")


def runtime_cmd(binary: str, port: int, tenants_file: str) -> list[str]:
    return [binary, "--listen", f"127.0.0.1:{port}", "--tenants-file", tenants_file,
            "--log-format", "json"]


def runtime_env(dyn_port: int, sqs_endpoint: str | None) -> dict:
    env = dict(os.environ)
    env.update({
        "AWS_ENDPOINT_URL": sqs_endpoint or f"http://127.0.0.1:{dyn_port}",
        "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{dyn_port}",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    env.pop("EMPORIUM_CREATE_TABLES", None)
    env.pop("EMPORIUM_WATCH_SECRETS", None)
    return env


def proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return {"rss_mib": round(out.get("VmRSS", 0) / 1024, 1),
            "hwm_mib": round(out.get("VmHWM", 0) / 1024, 1),
            "threads": out.get("Threads")}


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cmd_out(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(binary: str) -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        for l in f:
            if l.startswith("MemTotal"):
                mem = int(l.split()[1]) // 1024
    wrk_v = cmd_out(["sh", "-c", "wrk -v 2>&1 | head -1"])
    return {
        "cpu": cpu, "cores": os.cpu_count(), "mem_mib": mem,
        "kernel": os.uname().release,
        "rustc": cmd_out(["rustc", "--version"]),
        "wrk": wrk_v, "node": cmd_out(["node", "--version"]),
        "dynalite": json.load(open(os.path.join(BENCH, "node_modules", "dynalite", "package.json")))["version"],
        "git_commit": cmd_out(["git", "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(cmd_out(["git", "status", "--porcelain", "--", "storefront", "tenant-config"])),
        "binary": os.path.relpath(binary, ROOT) if binary.startswith(ROOT) else binary,
    }


COUNTERS = ("catalog_loads", "catalog_checks", "search_cache_hits", "search_cache_misses")


def cache_counters(api: "Api") -> dict:
    """The runtime's catalog and search cache counters from /metrics (absent ones are left out)."""
    for attempt in range(2):
        try:
            st, body = api.req("GET", "/metrics", "localhost")
            break
        except (OSError, http.client.HTTPException):
            # The runtime closed the idle keep-alive connection: the second try opens a new one.
            if attempt:
                return {}
    if st != 200 or not isinstance(body, bytes):
        return {}
    out = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        for c in COUNTERS:
            if name == f"storefront_{c}_total":
                out[c] = int(float(value))
    return out


def loadavg() -> list[float]:
    return [float(x) for x in open("/proc/loadavg").read().split()[:3]]


def perf_top(data: str, txt: str, n: int = 15) -> list[dict]:
    """Self time by symbol (all threads of the runtime), the top n."""
    out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio",
                          "-g", "none", "--percent-limit", "0.5"], capture_output=True, text=True, timeout=300).stdout
    with open(txt, "w") as f:
        f.write(out)
    top = []
    for line in out.splitlines():
        m = line.strip().split(None, 2)
        if len(m) == 3 and m[0].endswith("%") and m[1].startswith("["):
            top.append({"self_pct": float(m[0][:-1]), "symbol": m[2].strip()[:160]})
    return top[:n]


def lua_string(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for ASCII


def write_requests(path: str, reqs: list[tuple]) -> None:
    """reqs: (method, path, host, body-or-None). A Lua file returning a list."""
    with open(path, "w") as f:
        f.write("return {\n")
        for m, p, h, b, *extra in reqs:
            body = "nil" if b is None else lua_string(json.dumps(b, separators=(",", ":")))
            hdrs = ""
            if extra and extra[0]:
                hdrs = ",{" + ",".join(f"[{lua_string(k)}]={lua_string(v)}" for k, v in extra[0].items()) + "}"
            f.write(f"{{{lua_string(m)},{lua_string(p)},{lua_string(h)},{body}{hdrs}}},\n")
        f.write("}\n")


def run_wrk(port: int, conns: int, reqfile: str, name: str) -> dict:
    outfile = os.path.join(RAW, f"{name}-c{conns}.json")
    threads = 1 if conns == 1 else 2
    env = dict(os.environ, BENCH_REQS=reqfile, BENCH_WRK_OUT=outfile)
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{DURATION}s", "--timeout", "10s",
           "-s", os.path.join(HERE, "wrk.lua"), f"http://127.0.0.1:{port}"]
    if os.path.exists(outfile):
        os.remove(outfile)
    load_before = loadavg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=DURATION + 60)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.path.join(RAW, f"{name}-c{conns}.txt"), "w") as f:
        f.write(" ".join(cmd) + "\n" + r.stdout + r.stderr)
    if r.returncode != 0 or not os.path.exists(outfile):
        raise RuntimeError(f"wrk failed for {name} c={conns}: {r.stdout}{r.stderr}")
    res = json.load(open(outfile))
    res["loadavg_1m_before"] = load_before[0]
    # wrk's own CPU (the only child reaped during the run): it shares the 2 cores with the runtime.
    res["wrk_cpu_s"] = round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 2)
    res["command"] = "wrk -t{} -c{} -d{}s --timeout 10s -s bench/runtime/wrk.lua (BENCH_REQS={})".format(
        threads, conns, DURATION, os.path.relpath(reqfile, ROOT))
    return res


# ---------------------------------------------------------------------------------------------

def main() -> int:
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    binary = os.environ.get("BENCH_RUNTIME_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "emporium-storefront")
    if not os.path.exists(binary):
        raise SystemExit(f"no runtime binary at {binary}: run bench/runtime/run.sh")
    db_admin = os.environ.get("DATABASE_URL")
    if not db_admin or not os.environ.get("REDIS_URL"):
        raise SystemExit("DATABASE_URL (a superuser) and REDIS_URL are needed (see .state/env)")
    os.makedirs(RAW, exist_ok=True)
    work = os.path.join(RAW, "work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    t_start = time.time()
    result: dict = {"schema": 1, "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine_info(binary), "loadavg_start": loadavg(),
                    "config": {"tenants": TENANTS, "products_per_tenant": PRODUCTS, "big_tenant_products": BIG,
                               "categories_per_tenant": CATEGORIES, "variants_per_product": len(SIZES),
                               "api_products_per_tenant": API_PRODUCTS, "carts_per_tenant": CARTS_PER_TENANT,
                               "duration_s": DURATION, "connections": CONNS,
                               "store": "dynalite (in memory) for DynamoDB; shared PostgreSQL and Redis",
                               "runtime_flags": "defaults (catalog max staleness 30 s, search cache 16 MiB, pg pool 6, info logs as JSON to a file)"}}

    # PostgreSQL: the bench's own database on the shared server.
    u = urllib.parse.urlsplit(db_admin)
    bench_db = "emporium_bench_runtime"
    dsn = urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + bench_db, "", ""))
    # A fresh database each run (orders and carts of earlier runs would only slow it down).
    subprocess.run(["psql", db_admin, "-qc", f"DROP DATABASE IF EXISTS {bench_db}"], capture_output=True)
    exists = subprocess.run(["psql", db_admin, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{bench_db}'"],
                            capture_output=True, text=True, check=True).stdout.strip()
    if exists != "1":
        subprocess.run(["psql", db_admin, "-qc", f"CREATE DATABASE {bench_db}"], check=True, capture_output=True)

    # dynalite
    dyn_port = free_port()
    dyn = start(["node", os.path.join(BENCH, "node_modules", "dynalite", "cli.js"), "--host", "127.0.0.1",
                 "--port", str(dyn_port), "--createTableMs", "0"], os.path.join(work, "dynalite.log"))
    ddb = Dynamo(dyn_port)
    for _ in range(100):
        try:
            ddb.call("ListTables", {})
            break
        except OSError:
            time.sleep(0.1)
    run_tag = uuid.uuid4().hex[:6]
    pool_tables = {"catalog": "bench-pool-catalog", "carts": "bench-pool-carts", "sessions": "bench-pool-sessions"}
    tenants = [Tenant(f"bench-{run_tag}-t{i:03d}", PRODUCTS, pool_tables, "pooled") for i in range(TENANTS)]
    big = None
    if BIG:
        big_tables = {k: f"bench-big-{k}" for k in ("catalog", "carts", "sessions")}
        big = Tenant(f"bench-{run_tag}-big", BIG, big_tables, "dedicated")
        tenants.append(big)
    for t in set(json.dumps(t.tables, sort_keys=True) for t in tenants):
        for name in json.loads(t).values():
            ddb.create_table(name)
    tenants_file = os.path.join(work, "tenants.json")
    with open(tenants_file, "w") as f:
        json.dump([t.config(dsn) for t in tenants], f)
    os.chmod(tenants_file, 0o600)
    secret_files.append(tenants_file)
    # The order-event relay (checkout) polls every tenant's outbox and needs its SQS queue:
    # SQS goes to the shared stack's moto (AWS_ENDPOINT_URL), with the queues created here and
    # deleted on exit; DynamoDB goes to dynalite.
    sqs_endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if sqs_endpoint:
        for t in tenants:
            url = sqs_call(sqs_endpoint, "CreateQueue", {"QueueName": sqs_queue_name(t.id)})["QueueUrl"]
            cleanups.append(lambda url=url: sqs_call(sqs_endpoint, "DeleteQueue", {"QueueUrl": url}))
    result["config"]["sqs"] = "shared moto (queues created by the harness)" if sqs_endpoint else "none (relay fails)"
    env = runtime_env(dyn_port, sqs_endpoint)

    # 1. Seed through the admin API (categories, first products) with a first runtime instance.
    port = free_port()
    rt_log = os.path.join(work, "runtime-seed.log")
    rt = start(runtime_cmd(binary, port, tenants_file), rt_log, env)
    api = Api(port)
    wait_http(api, rt, rt_log)
    rng = random.Random(SEED)
    drafts = {t.id: [draft(random.Random(f"{SEED}-{t.id}-{i}"), i) for i in range(t.n)] for t in tenants}

    def seed(t: Tenant) -> list[float]:
        lat = []
        for c in category_ids():
            t0 = time.perf_counter()
            st, body = api.req("POST", "/api/v1/admin/categories", t.host,
                               {"id": c, "name": c.replace("-", " ").title()}, t.admin_key)
            lat.append(time.perf_counter() - t0)
            if st not in (201, 409):
                raise RuntimeError(f"create category {t.id}: {st} {body}")
        for i in range(min(API_PRODUCTS, t.n)):
            t0 = time.perf_counter()
            st, body = api.req("POST", "/api/v1/admin/products", t.host, drafts[t.id][i], t.admin_key)
            lat.append(time.perf_counter() - t0)
            if st != 201:
                raise RuntimeError(f"create product {t.id}: {st} {body}")
            t.product_ids.append(body["id"])
        return lat

    t0 = time.time()
    with ThreadPoolExecutor(4) as ex:
        lats = [x for l in ex.map(seed, tenants) for x in l]
    lats.sort()
    result["seed_api"] = {"requests": len(lats), "seconds": round(time.time() - t0, 1),
                          "p50_ms": round(lats[len(lats) // 2] * 1000, 1),
                          "p99_ms": round(lats[int(len(lats) * 0.99)] * 1000, 1)}
    log(f"seeded through the admin API: {result['seed_api']}")
    stop(rt)

    # 2. Bulk load the rest straight into the catalog tables.
    t0 = time.time()
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

    def bulk(t: Tenant) -> int:
        items = []
        for i in range(min(API_PRODUCTS, t.n), t.n):
            pid, doc = product_doc(drafts[t.id][i], base + dt.timedelta(minutes=i))
            if len(t.product_ids) < 200:
                t.product_ids.append(pid)
            items.append({"pk": {"S": f"{t.id}#CATALOG"}, "sk": {"S": f"PRODUCT#{pid}"},
                          "doc": {"S": json.dumps(doc, separators=(",", ":"))}})
            if len(items) == 25:
                ddb.batch_put(t.tables["catalog"], items)
                items = []
        if items:
            ddb.batch_put(t.tables["catalog"], items)
        return t.n

    with ThreadPoolExecutor(3) as ex:
        total = sum(ex.map(bulk, tenants))
    # Count the import like an admin write does (storefront/src/storage/dynamo/catalog.rs, VERSION), so
    # any runtime already serving these tenants would see the change at its next version check.
    for t in tenants:
        ddb.call("UpdateItem", {"TableName": t.tables["catalog"],
                                "Key": {"pk": {"S": f"{t.id}#CATALOG"}, "sk": {"S": "VERSION"}},
                                "UpdateExpression": "ADD v :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}}})
    result["bulk_load"] = {"products": total, "seconds": round(time.time() - t0, 1)}
    log(f"bulk-loaded into dynalite: {result['bulk_load']}")
    for t in tenants:
        t.skus = [v["sku"] for d in random.Random(t.id).sample(drafts[t.id], min(50, t.n)) for v in d["variants"]]
    del drafts

    # 3. The measured runtime: fresh start, warm, verify through the shopper API.
    port = free_port()
    rt_log = os.path.join(work, "runtime.log")
    t0 = time.time()
    rt = start(runtime_cmd(binary, port, tenants_file), rt_log, env)
    api = Api(port)
    wait_http(api, rt, rt_log)
    result["runtime_listening_s"] = round(time.time() - t0, 2)

    def verify(t: Tenant) -> None:
        st, body = api.req("GET", "/api/v1/search?limit=1", t.host)
        if st != 200 or body.get("total") != t.n:
            raise RuntimeError(f"tenant {t.id}: expected {t.n} products, got {st} {str(body)[:300]}")
        st, body = api.req("GET", "/api/v1/categories", t.host)
        if st != 200 or len(body) != CATEGORIES:
            raise RuntimeError(f"tenant {t.id}: categories {st} {str(body)[:300]}")

    with ThreadPoolExecutor(2) as ex:
        list(ex.map(verify, tenants))
    result["warm_all_tenants_s"] = round(time.time() - t0, 2)
    result["rss_after_warm"] = proc_status(rt.pid)
    result["counters_after_warm"] = cache_counters(api)
    log(f"all {len(tenants)} tenants serve their full catalogs after {result['warm_all_tenants_s']} s; "
        f"RSS {result['rss_after_warm']}")

    # Carts for add-to-cart (pooled tenants; the big tenant's too).
    def make_carts(t: Tenant) -> None:
        for _ in range(CARTS_PER_TENANT):
            st, body = api.req("POST", "/api/v1/carts", t.host, None)
            if st != 201:
                raise RuntimeError(f"create cart {t.id}: {st} {body}")
            t.carts.append(body["id"])

    with ThreadPoolExecutor(4) as ex:
        list(ex.map(make_carts, tenants))

    # Request mixes (random but fixed by SEED), one Lua file each.
    small = [t for t in tenants if t is not big]
    sorts = ["", "?sort=price_asc", "?sort=price_desc&limit=20", "?category=cat-{}", "?category=cat-{}&sort=price_asc"]

    def list_reqs(ts: list[Tenant], n=4000):
        out = []
        for _ in range(n):
            t = rng.choice(ts)
            q = rng.choice(sorts).format(rng.randrange(CATEGORIES))
            out.append(("GET", "/api/v1/products" + q, t.host, None))
        return out

    def page_reqs(ts, n=4000):
        return [("GET", f"/api/v1/products/{rng.choice(t.product_ids)}", t.host, None)
                for t in (rng.choice(ts) for _ in range(n))]

    def search_reqs(ts, n=4000):
        return [("GET", "/api/v1/search?q=" + urllib.parse.quote(rng.choice(QUERIES)), t.host, None)
                for t in (rng.choice(ts) for _ in range(n))]

    def uncached_search_reqs(ts, n=30000):
        # Two random words of the catalog's vocabulary per request: ~3,600 word pairs per tenant,
        # so nearly every request misses the runtime's search answer cache.
        words = ADJ + MAT + NOUN
        return [("GET", "/api/v1/search?q=" + urllib.parse.quote(f"{rng.choice(words)} {rng.choice(words)}"),
                 t.host, None) for t in (rng.choice(ts) for _ in range(n))]

    def cart_reqs(ts, n=20000):
        return [("POST", f"/api/v1/carts/{rng.choice(t.carts)}/items", t.host,
                 {"sku": rng.choice(t.skus), "quantity": 1})
                for t in (rng.choice(ts) for _ in range(n))]

    files = {}
    scen_defs = [("plaintext", "GET /healthz (same server, same middleware; no I/O)",
                  [("GET", "/healthz", small[0].host, None)]),
                 ("product_list", f"GET /api/v1/products (newest / price sorts / category filter, 20 per page), random tenant of {len(small)}", list_reqs(small)),
                 ("product_page", f"GET /api/v1/products/{{id}}, random product of a random tenant of {len(small)}", page_reqs(small)),
                 ("search", f"GET /api/v1/search?q=... (1-3 words, some misspelt), random tenant of {len(small)}", search_reqs(small)),
                 ("search_uncached", f"GET /api/v1/search?q=<two random catalog words>, random tenant of {len(small)}: "
                                     f"almost every query is new, so the runtime's search answer cache (almost) never "
                                     f"hits; at 1 and 64 connections only", uncached_search_reqs(small)),
                 ("add_to_cart", f"POST /api/v1/carts/{{id}}/items quantity 1, random cart of {CARTS_PER_TENANT} per tenant x random SKU (DynamoDB conditional UpdateItem on dynalite)", cart_reqs(small))]
    if big:
        scen_defs += [(f"big_{name}", f"as {name}, all on the tenant with {big.n} products", fn([big]))
                      for name, fn in (("product_list", list_reqs), ("product_page", page_reqs), ("search", search_reqs))]
    descriptions = {}
    for name, desc, reqs in scen_defs:
        files[name] = os.path.join(work, f"req-{name}.lua")
        write_requests(files[name], reqs)
        descriptions[name] = desc

    # Sanity: every request kind answers 2xx once before measuring.
    for name, _, reqs in scen_defs:
        m, p, h, b = reqs[0]
        st, body = api.req(m, p, h, b)
        if st >= 300:
            raise RuntimeError(f"{name}: {m} {p} answered {st} {str(body)[:300]}")

    # Is there a checkout route? (An unknown route answers "no route ..."; a known one "cart".)
    st, body = api.req("POST", f"/api/v1/carts/{uuid.uuid4()}/checkout", small[0].host, None)
    checkout = None
    if not (st == 404 and "no route" in json.dumps(body)):
        checkout = ["/api/v1/carts/{id}/checkout"]
    result["checkout_endpoint"] = checkout or None

    # 4. wrk. Big-tenant scenarios only at 1 and 64 connections (how cost grows with catalog size).
    scenarios = []
    for c in CONNS:
        for name, _, _ in scen_defs:
            if (name.startswith("big_") or name == "search_uncached") and c not in (1, 64):
                continue
            log(f"wrk {name} c={c} ({DURATION}s)")
            prof = f"{name}:{c}" in PERF and shutil.which("perf")
            if prof:
                pdata = os.path.join(RAW, f"perf-{name}-c{c}.data")
                perf = subprocess.Popen(["perf", "record", "-F", "199", "-g", "-o", pdata, "-p", str(rt.pid)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                procs.append(perf)
            cpu0, k0 = (cpu_s(rt.pid), cpu_s(dyn.pid)), cache_counters(api)
            r = run_wrk(port, c, files[name], name)
            cpu1, k1 = (cpu_s(rt.pid), cpu_s(dyn.pid)), cache_counters(api)
            r["counters"] = {k: k1[k] - k0.get(k, 0) for k in k1}
            r["cpu_s"] = {"runtime": round(cpu1[0] - cpu0[0], 2), "dynalite": round(cpu1[1] - cpu0[1], 2)}
            r["runtime_cpu_us_per_req"] = round((cpu1[0] - cpu0[0]) / max(r["requests"], 1) * 1e6, 1)
            if prof:
                perf.send_signal(signal.SIGINT)
                perf.wait(timeout=60)
                procs.remove(perf)
                r["perf_top"] = perf_top(pdata, os.path.join(RAW, f"perf-{name}-c{c}.txt"))
            r.update({"scenario": name, "connections": c})
            r.update(proc_status(rt.pid))
            if rt.poll() is not None:
                raise RuntimeError(f"runtime died during {name}; see {rt_log}")
            scenarios.append(r)
            log(f"  {r['requests_per_s']:.0f} req/s p50 {r['latency_ms']['p50']:.2f} ms "
                f"p99 {r['latency_ms']['p99']:.2f} ms non2xx {r['errors']['status']} rss {r['rss_mib']} MiB")
    # Checkout (issue 6), when the runtime has it: every cart checked out once, a unique
    # Idempotency-Key each, all carts of a tenant buying one unit of the same SKU whose stock is
    # CK_OVERSOLD below the number of carts, so exactly that many must be refused (409) and the
    # stock must end at zero, never below.
    if checkout and any("checkout" in p for p in checkout) and CK_CARTS:
        ck_tenants = small[:CK_TENANTS]
        per = CK_CARTS // len(ck_tenants)
        stock = per * CK_STOCK_PCT // 100
        log(f"checkout set-up: {len(ck_tenants)} tenants x {per} carts, stock {stock} of one SKU each")
        t0 = time.time()

        def ck_setup(t: Tenant) -> list[tuple]:
            sku = t.skus[0]
            st, body = api.req("PUT", f"/api/v1/admin/inventory/{sku}", t.host, {"available": stock}, t.admin_key)
            if st != 200:
                raise RuntimeError(f"set stock {t.id}: {st} {body}")
            out = []
            for _ in range(per):
                st, body = api.req("POST", "/api/v1/carts", t.host, None)
                if st != 201:
                    raise RuntimeError(f"create cart {t.id}: {st} {body}")
                cid = body["id"]
                st, body = api.req("POST", f"/api/v1/carts/{cid}/items", t.host, {"sku": sku, "quantity": 1})
                if st != 200:
                    raise RuntimeError(f"add to cart {t.id}: {st} {body}")
                out.append(("POST", f"/api/v1/carts/{cid}/checkout", t.host, None,
                            {"Idempotency-Key": str(uuid.uuid4())}))
            return out

        with ThreadPoolExecutor(6) as ex:
            ck = [r for rs in ex.map(ck_setup, ck_tenants) for r in rs]
        rng.shuffle(ck)
        files["checkout"] = os.path.join(work, "req-checkout.lua")
        write_requests(files["checkout"], ck)
        descriptions["checkout"] = (f"POST /api/v1/carts/{{id}}/checkout (manual payments), {len(ck)} carts of 1 unit "
                                    f"over {len(ck_tenants)} tenants, each request a new cart and Idempotency-Key; "
                                    f"stock {stock} per tenant (of {per} carts), so the stock runs out and later checkouts must get 409")
        result["checkout_setup_s"] = round(time.time() - t0, 1)
        c = CK_CONNS
        log(f"wrk checkout c={c} ({DURATION}s)")
        cpu0 = (cpu_s(rt.pid), cpu_s(dyn.pid))
        r = run_wrk(port, c, files["checkout"], "checkout")
        cpu1 = (cpu_s(rt.pid), cpu_s(dyn.pid))
        r["cpu_s"] = {"runtime": round(cpu1[0] - cpu0[0], 2), "dynalite": round(cpu1[1] - cpu0[1], 2)}
        r["runtime_cpu_us_per_req"] = round((cpu1[0] - cpu0[0]) / max(r["requests"], 1) * 1e6, 1)
        r.update({"scenario": "checkout", "connections": c})
        r.update(proc_status(rt.pid))
        scenarios.append(r)
        # What PostgreSQL holds afterwards.
        tags = ",".join(f"'{t.id}'" for t in ck_tenants)
        q = (f"SELECT o.tenant_id, count(*), (SELECT i.available FROM inventory i WHERE i.tenant_id = o.tenant_id) "
             f"FROM orders o WHERE o.tenant_id IN ({tags}) GROUP BY o.tenant_id")
        rows = subprocess.run(["psql", dsn, "-tAF,", "-c", q], capture_output=True, text=True, check=True).stdout.split()
        orders = {t: (int(n), int(a)) for t, n, a in (row.split(",") for row in rows)}
        ordered = sum(n for n, _ in orders.values())
        oversold = sum(1 for n, a in orders.values() if n > stock or a < 0 or n + a != stock)
        dup = subprocess.run(["psql", dsn, "-tAc", f"SELECT count(*) FROM (SELECT cart_id FROM orders WHERE tenant_id IN ({tags}) "
                                                    f"GROUP BY tenant_id, cart_id HAVING count(*) > 1) d"],
                             capture_output=True, text=True, check=True).stdout.strip()
        span = subprocess.run(["psql", dsn, "-tAc", f"SELECT extract(epoch FROM max(created_at) - min(created_at)) FROM orders "
                                                     f"WHERE tenant_id IN ({tags})"],
                              capture_output=True, text=True, check=True).stdout.strip()
        span = float(span) if span else 0.0
        r["checkout"] = {"carts": len(ck), "orders_span_s": round(span, 2),
                         "orders_per_s_in_span": round(ordered / span, 1) if span > 0 else None, "stock_per_tenant": stock, "tenants": len(ck_tenants),
                         "orders_created": ordered, "orders_per_s": round(ordered / r["duration_s"], 1),
                         "wrapped_around": r["requests"] > len(ck),
                         "tenants_oversold_or_inconsistent": oversold, "carts_with_two_orders": int(dup or 0),
                         "refused_409": r["errors"]["status"],
                         "stock_left": {t: a for t, (_, a) in orders.items()}}
        log(f"  checkout: {r['checkout']} p99 {r['latency_ms']['p99']:.1f} ms non2xx {r['errors']['status']}")
    result["scenarios"] = scenarios
    result["descriptions"] = descriptions
    result["rss_end"] = proc_status(rt.pid)
    result["counters_end"] = cache_counters(api)

    # Admin write latency as catalogs grow (each write reloads the tenant's snapshot).
    admin = {}
    for t in ([small[0]] + ([big] if big else [])):
        lat = []
        for i in range(5):
            d = draft(random.Random(f"admin-{i}"), 90000 + i)
            t0 = time.perf_counter()
            st, body = api.req("POST", "/api/v1/admin/products", t.host, d, t.admin_key)
            lat.append(round((time.perf_counter() - t0) * 1000, 1))
            if st != 201:
                raise RuntimeError(f"admin write {t.id}: {st} {body}")
        admin[str(t.n)] = lat
        t.n += len(lat)
    result["admin_write_ms_by_catalog_size"] = admin
    stop(rt)

    # Memory probes: the process with no tenant, and the same tenants with glibc's mmap threshold
    # pinned (how much of the RSS is allocator retention rather than live data).
    probes = {}
    empty = os.path.join(work, "tenants-empty.json")
    with open(empty, "w") as f:
        f.write("[]")
    # BENCH_GLIBC_BIN: the same runtime built without its `mimalloc` feature (glibc malloc), to
    # measure what the allocator choice is worth; BENCH_MALLOC_PROBE: env knobs for another probe.
    knobs = os.environ.get("BENCH_MALLOC_PROBE", "")
    extra_env = dict(kv.split("=", 1) for kv in knobs.split())
    plan = [("no_tenants", binary, empty, {})]
    if knobs:
        plan.append((f"all_tenants_{knobs}", binary, tenants_file, extra_env))
    glibc_bin = os.environ.get("BENCH_GLIBC_BIN")
    if glibc_bin and os.path.exists(glibc_bin):
        plan.append(("all_tenants_glibc_malloc", glibc_bin, tenants_file, {}))
    for name, probe_bin, tf, extra in plan:
        port = free_port()
        plog = os.path.join(work, f"runtime-probe-{len(probes)}.log")
        p = start(runtime_cmd(probe_bin, port, tf), plog, dict(env, **extra))
        api = Api(port)
        wait_http(api, p, plog)
        t0 = time.time()
        if tf == tenants_file:
            with ThreadPoolExecutor(2) as ex:
                list(ex.map(verify, tenants))
        else:
            time.sleep(1)
        probes[name] = dict(proc_status(p.pid), warm_s=round(time.time() - t0, 2))
        stop(p)
        log(f"memory probe {name}: {probes[name]}")
    result["memory_probes"] = probes

    # Stale read: with a 5 s staleness bound, the first request to a tenant idle for longer waits
    # for a full reload of its catalog (what an idle tenant's first shopper sees after 30 s by default).
    stale = {}
    port = free_port()
    plog = os.path.join(work, "runtime-probe-stale.log")
    p = start(runtime_cmd(binary, port, tenants_file), plog, dict(env, EMPORIUM_CATALOG_MAX_STALENESS_SECS="5"))
    api = Api(port)
    wait_http(api, p, plog)
    for t in ([small[0]] + ([big] if big else [])):
        api.req("GET", "/api/v1/products", t.host)
        time.sleep(0.2)
        t0 = time.perf_counter()
        api.req("GET", "/api/v1/products", t.host)
        fresh = (time.perf_counter() - t0) * 1000
        time.sleep(6)
        t0 = time.perf_counter()
        api.req("GET", "/api/v1/products", t.host)
        stale_ms = (time.perf_counter() - t0) * 1000
        stale[str(t.n)] = {"fresh_ms": round(fresh, 2), "after_idle_ms": round(stale_ms, 1)}
    stop(p)
    result["stale_read_probe"] = stale
    log(f"stale-read probe: {stale}")
    stop(dyn)
    os.remove(tenants_file)  # holds the DSN (superuser password) and admin keys
    secret_files.remove(tenants_file)
    result["loadavg_end"] = loadavg()
    result["total_seconds"] = round(time.time() - t_start, 1)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    # Keep the last few runs so the doc can show run-to-run variation on this shared machine.
    hist = os.path.join(os.path.dirname(OUT), "history")
    os.makedirs(hist, exist_ok=True)
    shutil.copy(OUT, os.path.join(hist, "runtime-" + result["started_at"].replace(":", "").replace("+0000", "Z") + ".json"))
    for old in sorted(os.listdir(hist))[:-HISTORY]:
        os.remove(os.path.join(hist, old))
    log(f"wrote {os.path.relpath(OUT, ROOT)} in {result['total_seconds']} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
