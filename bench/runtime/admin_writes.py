#!/usr/bin/env python3
"""Admin write latency by catalog size (issue 16 item 4: incremental catalog updates).

Run through `make -C bench admin-writes` (bench/runtime/admin_writes.sh builds the release
binary and installs dynalite first). Everything started here (dynalite, two runtime replicas)
listens on 127.0.0.1 only and is stopped on exit, also on Ctrl-C / SIGTERM; the run is bounded
by the number of writes (BENCH_WRITES per series) and every request has a timeout.

Set-up: two tenants, one with BENCH_SMALL (1,000) and one with BENCH_BIG (20,000) products,
bulk-loaded straight into dynalite in the runtime's item format (as bench.py does) and counted
with `ADD v 1` on `VERSION` (no feed entry, so a runtime that had the catalog would load it
whole). Two runtime replicas A and B serve both tenants from the same tables and Redis.

Measured, per tenant, on replica A (sequential, one client; then 4 concurrent clients):
  create  POST /api/v1/admin/products                  (a new product)
  replace PUT  /api/v1/admin/products/{id}             (a bulk-loaded product renamed)
  delete  DELETE /api/v1/admin/products/{id}           (a bulk-loaded product)
Each write answers after the writer's snapshot includes it (read-your-writes). Meanwhile a
reader thread asks replica B for the big tenant's product list every 50 ms, so B catches up
from the change feed as it would in production. The runtimes' counters (/metrics) say how many
full catalog loads and how many incremental applies each replica did during the writes.

Writes results to bench/results/admin-writes.json; `bench/runtime/report.py` renders them into
docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402  (the runtime bench's helpers: processes, dynalite, HTTP)

SMALL = int(os.environ.get("BENCH_SMALL", "1000"))
BIG = int(os.environ.get("BENCH_BIG", "20000"))
WRITES = int(os.environ.get("BENCH_WRITES", "300"))  # per series (create / replace / delete)
CONCURRENT = int(os.environ.get("BENCH_WRITE_CLIENTS", "4"))
OUT = os.environ.get("BENCH_ADMIN_OUT", os.path.join(b.BENCH, "results", "admin-writes.json"))
COUNTERS = ("catalog_loads", "catalog_incremental_applies", "catalog_feed_gaps", "catalog_checks")


def counters(api: b.Api) -> dict:
    try:
        st, body = api.req("GET", "/metrics", "localhost")
    except (OSError, http.client.HTTPException):
        # The runtime closed the idle keep-alive connection: once more on a new one.
        st, body = api.req("GET", "/metrics", "localhost")
    out = {}
    if st == 200 and isinstance(body, bytes):
        for line in body.decode().splitlines():
            name, _, value = line.partition(" ")
            for c in COUNTERS:
                if name == f"storefront_{c}_total":
                    out[c] = int(float(value))
    return out


def delta(after: dict, before: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in COUNTERS}


def pct(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * q))]


def summary(lat_ms: list[float]) -> dict:
    s = sorted(lat_ms)
    return {"writes": len(s), "p50_ms": round(pct(s, 0.5), 2), "p90_ms": round(pct(s, 0.9), 2),
            "p99_ms": round(pct(s, 0.99), 2), "max_ms": round(s[-1], 2),
            "mean_ms": round(sum(s) / len(s), 2)}


def main() -> int:
    signal.signal(signal.SIGTERM, b.on_signal)
    signal.signal(signal.SIGINT, b.on_signal)
    binary = os.environ.get("BENCH_RUNTIME_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(b.ROOT, "target")), "release", "emporium-storefront")
    if not os.path.exists(binary):
        raise SystemExit(f"no runtime binary at {binary}: run bench/runtime/admin_writes.sh")
    db_admin = os.environ.get("DATABASE_URL")
    if not db_admin or not os.environ.get("REDIS_URL"):
        raise SystemExit("DATABASE_URL (a superuser) and REDIS_URL are needed (see .state/env)")
    work = os.path.join(b.RAW, "admin-writes")
    os.makedirs(work, exist_ok=True)
    t_start = time.time()
    result: dict = {"schema": 1, "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": b.machine_info(binary), "loadavg_start": b.loadavg(),
                    "config": {"small": SMALL, "big": BIG, "writes_per_series": WRITES,
                               "concurrent_clients": CONCURRENT, "variants_per_product": len(b.SIZES),
                               "store": "dynalite (in memory) for DynamoDB; shared PostgreSQL and Redis",
                               "replicas": 2,
                               # How the binary was built, when it is not `cargo build --release`.
                               "build": os.environ.get("BENCH_BUILD_NOTE", "release")}}

    u = urllib.parse.urlsplit(db_admin)
    bench_db = "emporium_bench_admin"
    dsn = urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + bench_db, "", ""))
    subprocess.run(["psql", db_admin, "-qc", f"DROP DATABASE IF EXISTS {bench_db}"], capture_output=True)
    subprocess.run(["psql", db_admin, "-qc", f"CREATE DATABASE {bench_db}"], check=True, capture_output=True)

    dyn_port = b.free_port()
    b.start(["node", os.path.join(b.BENCH, "node_modules", "dynalite", "cli.js"), "--host", "127.0.0.1",
             "--port", str(dyn_port), "--createTableMs", "0"], os.path.join(work, "dynalite.log"))
    ddb = b.Dynamo(dyn_port)
    for _ in range(100):
        try:
            ddb.call("ListTables", {})
            break
        except OSError:
            time.sleep(0.1)
    tag = uuid.uuid4().hex[:6]
    tenants = []
    for name, n in (("small", SMALL), ("big", BIG)):
        tables = {k: f"bench-aw-{name}-{k}" for k in ("catalog", "carts", "sessions")}
        for tbl in tables.values():
            ddb.create_table(tbl)
        tenants.append(b.Tenant(f"bench-aw-{tag}-{name}", n, tables, "dedicated"))
    tenants_file = os.path.join(work, "tenants.json")
    with open(tenants_file, "w") as f:
        json.dump([t.config(dsn) for t in tenants], f)
    os.chmod(tenants_file, 0o600)
    b.secret_files.append(tenants_file)

    # Bulk load, then count it the legacy way (a version without a feed entry).
    t0 = time.time()
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    bulk_ids: dict[str, list[str]] = {}

    def bulk(t: b.Tenant) -> None:
        ddb.batch_put(t.tables["catalog"], [
            {"pk": {"S": f"{t.id}#CATALOG"}, "sk": {"S": f"CATEGORY#{c}"},
             "doc": {"S": json.dumps({"id": c, "name": c.replace("-", " ").title(), "parent_id": None})}}
            for c in b.category_ids()])
        items, ids = [], []
        for i in range(t.n):
            pid, doc = b.product_doc(b.draft(random.Random(f"aw-{t.id}-{i}"), i), base + dt.timedelta(minutes=i))
            ids.append(pid)
            items.append({"pk": {"S": f"{t.id}#CATALOG"}, "sk": {"S": f"PRODUCT#{pid}"},
                          "doc": {"S": json.dumps(doc, separators=(",", ":"))}})
            if len(items) == 25:
                ddb.batch_put(t.tables["catalog"], items)
                items = []
        if items:
            ddb.batch_put(t.tables["catalog"], items)
        ddb.call("UpdateItem", {"TableName": t.tables["catalog"],
                                "Key": {"pk": {"S": f"{t.id}#CATALOG"}, "sk": {"S": "VERSION"}},
                                "UpdateExpression": "ADD v :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}}})
        bulk_ids[t.id] = ids

    with ThreadPoolExecutor(2) as ex:
        list(ex.map(bulk, tenants))
    result["bulk_load_s"] = round(time.time() - t0, 1)
    b.log(f"bulk-loaded {SMALL} + {BIG} products in {result['bulk_load_s']} s")

    env = b.runtime_env(dyn_port, None)
    reps = {}
    for name in ("A", "B"):
        port = b.free_port()
        log = os.path.join(work, f"runtime-{name}.log")
        proc = b.start(b.runtime_cmd(binary, port, tenants_file), log, env)
        api = b.Api(port)
        b.wait_http(api, proc, log)
        reps[name] = (proc, api)
    a_proc, a = reps["A"]
    b_proc, rb = reps["B"]
    for api in (a, rb):
        for t in tenants:
            st, body = api.req("GET", "/api/v1/search?limit=1", t.host)
            if st != 200 or body.get("total") != t.n:
                raise RuntimeError(f"{t.id}: expected {t.n} products, got {st} {str(body)[:200]}")
    b.log("both replicas serve both catalogs")

    stop_reader = threading.Event()
    reader_stats = {"requests": 0, "errors": 0}
    big_t = tenants[1]

    def reader() -> None:
        api = b.Api(rb.port)
        while not stop_reader.wait(0.05):
            try:
                st, _ = api.req("GET", "/api/v1/products?limit=5", big_t.host)
                reader_stats["requests"] += 1
                if st != 200:
                    reader_stats["errors"] += 1
            except OSError:
                reader_stats["errors"] += 1

    rthread = threading.Thread(target=reader, daemon=True)
    rthread.start()

    series = []
    for t in tenants:
        rng = random.Random(f"aw-series-{t.id}")
        victims = rng.sample(bulk_ids[t.id], min(len(bulk_ids[t.id]), 2 * WRITES))
        to_replace, to_delete = victims[:WRITES], victims[WRITES:2 * WRITES]
        catalog_size = t.n

        def create(i: int, api: b.Api) -> tuple[str, str, dict | None]:
            d = b.draft(random.Random(f"aw-new-{t.id}-{i}"), 500000 + i)
            return "POST", "/api/v1/admin/products", d

        def replace(i: int, api: b.Api) -> tuple[str, str, dict | None]:
            d = b.draft(random.Random(f"aw-rep-{t.id}-{i}"), 700000 + i)
            d["title"] = f"Renamed {i} " + d["title"]
            # Keep the product's own SKUs (a draft may not take another product's).
            for k, v in enumerate(d["variants"]):
                v["sku"] = f"R{i:05d}-{k}"
            return "PUT", f"/api/v1/admin/products/{to_replace[i]}", d

        def delete(i: int, api: b.Api) -> tuple[str, str, dict | None]:
            return "DELETE", f"/api/v1/admin/products/{to_delete[i]}", None

        for kind, make, count, clients in (("create", create, WRITES, 1), ("replace", replace, len(to_replace), 1),
                                           ("delete", delete, len(to_delete), 1),
                                           ("create", create, WRITES, CONCURRENT)):
            offset = 0 if clients == 1 else WRITES  # distinct products for the concurrent run
            load_before = b.loadavg()
            ka0, kb0 = counters(a), counters(rb)
            cpu0 = b.cpu_s(a_proc.pid)
            lat: list[float] = []
            lock = threading.Lock()
            apis = [b.Api(a.port) for _ in range(clients)]

            def one(i: int) -> None:
                api = apis[i % clients]
                method, path, body = make(i if kind != "create" else i + offset, api)
                t1 = time.perf_counter()
                st, out = api.req(method, path, t.host, body, t.admin_key)
                ms = (time.perf_counter() - t1) * 1000
                if st not in (200, 201, 204):
                    raise RuntimeError(f"{kind} {t.id}: {st} {str(out)[:300]}")
                with lock:
                    lat.append(ms)

            t1 = time.time()
            if clients == 1:
                for i in range(count):
                    one(i)
            else:
                with ThreadPoolExecutor(clients) as ex:
                    list(ex.map(one, range(count)))
            wall = time.time() - t1
            cpu = b.cpu_s(a_proc.pid) - cpu0
            catalog_size += {"create": count, "delete": -count}.get(kind, 0)
            # Let replica B's reader see the last writes before counting its work.
            time.sleep(0.3)
            row = dict(summary(lat), tenant_products=t.n, kind=kind, clients=clients,
                       catalog_after=catalog_size, writes_per_s=round(count / wall, 1),
                       runtime_cpu_ms_per_write=round(cpu / count * 1000, 2),
                       loadavg_1m_before=load_before[0], loadavg_1m_after=b.loadavg()[0],
                       writer=delta(counters(a), ka0), other_replica=delta(counters(rb), kb0))
            series.append(row)
            b.log(f"{t.n:>6} products {kind:<7} x{clients}: p50 {row['p50_ms']} p99 {row['p99_ms']} max {row['max_ms']} ms; "
                  f"writer {row['writer']}; replica B {row['other_replica']}; load {load_before[0]}")
        # Both replicas agree on the catalog afterwards.
        for api in (a, rb):
            deadline = time.time() + 10
            while True:
                st, body = api.req("GET", "/api/v1/search?limit=1", t.host)
                if st == 200 and body.get("total") == catalog_size:
                    break
                if time.time() > deadline:
                    raise RuntimeError(f"{t.id}: replica shows {body.get('total')} products, expected {catalog_size}")
                time.sleep(0.1)
        # A renamed product is found by its new name on the other replica.
        st, body = rb.req("GET", "/api/v1/search?q=" + urllib.parse.quote(f"Renamed {WRITES - 1}"), t.host)
        if st != 200 or not any(h["product"]["id"] == to_replace[WRITES - 1] for h in body.get("hits", [])):
            raise RuntimeError(f"{t.id}: the last renamed product is not found by its new name on replica B")
    stop_reader.set()
    rthread.join(timeout=5)
    result["series"] = series
    result["reader_on_replica_b"] = reader_stats
    result["rss_mib"] = {"A": b.proc_status(a_proc.pid)["rss_mib"], "B": b.proc_status(b_proc.pid)["rss_mib"]}
    result["loadavg_end"] = b.loadavg()
    result["total_seconds"] = round(time.time() - t_start, 1)
    b.stop_all()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    b.log(f"wrote {os.path.relpath(OUT, b.ROOT)} in {result['total_seconds']} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        b.stop_all()
