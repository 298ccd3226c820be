#!/usr/bin/env python3
"""Cold-tenant cost and memory accounting of a pool replica with a catalog memory budget
(issue 19 item 1).

Run through `make -C bench pool-cold` (bench/runtime/pool_cold.sh builds the release binary and
installs dynalite first). Everything started here (dynalite, one runtime) listens on 127.0.0.1
only and is stopped on exit, also on Ctrl-C / SIGTERM; the run is bounded by the number of
tenants and every request has a timeout.

Set-up: BENCH_COLD_TENANTS (60) pooled tenants of BENCH_COLD_PRODUCTS (1,000) products each,
on one set of pool tables, bulk-loaded straight into dynalite in the runtime's item format (as
bench.py does). One runtime serves them with `--catalog-memory-mib BENCH_COLD_BUDGET_MIB` (64,
room for a part of them only) and nothing loaded at start (a pool replica loads a tenant on its
first request).

Measured:
  ready      /readyz answers 200 before any catalog is loaded (metrics say 0 loaded);
  sequential the first GET /api/v1/products of each tenant, one at a time: what a cold tenant's
             first request costs (p50 / p90 / p99 / max), and the same for a warm second request;
  burst      BENCH_COLD_BURST (16) concurrent first requests to each of 10 further cold tenants:
             every request's latency, and the runtime's count of full loads (must be one per
             tenant);
  memory     after every tenant was read: the runtime's estimate of the bytes it holds
             (`storefront_catalog_bytes_held`), snapshots loaded and evicted, and the process
             RSS, so the estimate can be compared with what the kernel sees.
The 1-minute load average is recorded beside each phase.

Writes bench/results/pool-cold.json; `bench/runtime/report.py` renders it into docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402  (the runtime bench's helpers: processes, dynalite, HTTP)

TENANTS = int(os.environ.get("BENCH_COLD_TENANTS", "60"))
PRODUCTS = int(os.environ.get("BENCH_COLD_PRODUCTS", "1000"))
BUDGET_MIB = int(os.environ.get("BENCH_COLD_BUDGET_MIB", "64"))
BURST = int(os.environ.get("BENCH_COLD_BURST", "16"))
BURST_TENANTS = 10
OUT = os.environ.get("BENCH_POOL_COLD_OUT", os.path.join(b.BENCH, "results", "pool-cold.json"))


def metrics(api: b.Api) -> dict:
    for attempt in range(2):
        try:
            st, body = api.req("GET", "/metrics", "localhost")
            break
        except OSError:
            if attempt:
                raise
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("storefront_catalog_"):
            name, _, value = line.partition(" ")
            out[name[len("storefront_"):]] = float(value)
    return out


def pct(s: list[float], q: float) -> float:
    return round(s[min(len(s) - 1, int(len(s) * q))], 2)


def summary(lat_ms: list[float]) -> dict:
    s = sorted(lat_ms)
    return {"requests": len(s), "p50_ms": pct(s, 0.5), "p90_ms": pct(s, 0.9), "p99_ms": pct(s, 0.99),
            "max_ms": round(s[-1], 2)}


def get(api: b.Api, t: b.Tenant) -> float:
    t0 = time.perf_counter()
    st, body = api.req("GET", "/api/v1/products?limit=20", t.host)
    ms = (time.perf_counter() - t0) * 1000
    if st != 200 or len(body.get("items", [])) != 20:
        raise RuntimeError(f"tenant {t.id}: {st} {str(body)[:300]}")
    return ms


def main() -> int:
    signal.signal(signal.SIGTERM, b.on_signal)
    signal.signal(signal.SIGINT, b.on_signal)
    binary = os.environ.get("BENCH_RUNTIME_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(b.ROOT, "target")), "release", "emporium-storefront")
    if not os.path.exists(binary):
        raise SystemExit(f"no runtime binary at {binary}: run bench/runtime/pool_cold.sh")
    dsn = os.environ.get("DATABASE_URL")
    if not dsn or not os.environ.get("REDIS_URL"):
        raise SystemExit("DATABASE_URL and REDIS_URL are needed (see .state/env)")
    work = os.path.join(b.RAW, "pool-cold")
    os.makedirs(work, exist_ok=True)
    t_start = time.time()
    result: dict = {"started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": b.machine_info(binary), "loadavg_start": b.loadavg(),
                    "config": {"tenants": TENANTS + BURST_TENANTS, "products_per_tenant": PRODUCTS,
                               "budget_mib": BUDGET_MIB, "burst": BURST, "burst_tenants": BURST_TENANTS,
                               "store": "dynalite (in memory), one set of pool tables"}}

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
    tag = os.urandom(3).hex()
    tables = {k: f"bench-coldpool-{k}" for k in ("catalog", "carts", "sessions")}
    for name in tables.values():
        ddb.create_table(name)
    tenants = [b.Tenant(f"cold-{tag}-t{i:03d}", PRODUCTS, tables, "pooled")
               for i in range(TENANTS + BURST_TENANTS)]
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

    def bulk(t: b.Tenant) -> None:
        items = []
        for i in range(t.n):
            d = b.draft(random.Random(f"{t.id}-{i}"), i)
            pid, doc = b.product_doc(d, base + dt.timedelta(minutes=i))
            items.append({"pk": {"S": f"{t.id}#CATALOG"}, "sk": {"S": f"PRODUCT#{pid}"},
                          "doc": {"S": json.dumps(doc, separators=(",", ":"))}})
            if len(items) == 25:
                ddb.batch_put(tables["catalog"], items)
                items = []
        if items:
            ddb.batch_put(tables["catalog"], items)
        ddb.call("UpdateItem", {"TableName": tables["catalog"],
                                "Key": {"pk": {"S": f"{t.id}#CATALOG"}, "sk": {"S": "VERSION"}},
                                "UpdateExpression": "ADD v :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}}})

    t0 = time.time()
    with ThreadPoolExecutor(3) as ex:
        list(ex.map(bulk, tenants))
    result["bulk_load_s"] = round(time.time() - t0, 1)
    b.log(f"bulk-loaded {len(tenants)} x {PRODUCTS} products in {result['bulk_load_s']} s")

    tenants_file = os.path.join(work, "tenants.json")
    with open(tenants_file, "w") as f:
        json.dump([t.config(dsn) for t in tenants], f)
    os.chmod(tenants_file, 0o600)
    b.secret_files.append(tenants_file)
    env = b.runtime_env(dyn_port, None)
    # A budget far below "all tenants" and no warm-up beyond it: the first requests are cold.
    env["EMPORIUM_CATALOG_MEMORY_MIB"] = str(BUDGET_MIB)
    port = b.free_port()
    log = os.path.join(work, "runtime.log")
    rt = b.start(b.runtime_cmd(binary, port, tenants_file), log, env)
    api = b.Api(port)
    b.wait_http(api, rt, log)
    st, body = api.req("GET", "/readyz", "localhost")
    m = metrics(api)
    result["ready"] = {"status": st, "snapshots_loaded": m.get("catalog_snapshots_loaded"),
                       "rss": b.proc_status(rt.pid)}
    # The start-up warm-up loads tenants until half the budget: wait for it to settle, so the
    # sequential phase below reads tenants it did not load.
    for _ in range(120):
        before = metrics(api).get("catalog_loads_total", 0)
        time.sleep(0.5)
        if metrics(api).get("catalog_loads_total", 0) == before:
            break
    warmed = int(metrics(api).get("catalog_loads_total", 0))
    result["warmed_at_start"] = warmed
    seq = tenants[:TENANTS]
    # Read the tenants the warm-up loaded last (it goes in file order), so each read is cold.
    seq = seq[warmed:] + seq[:warmed]
    load_seq = b.loadavg()
    cold, warm = [], []
    for t in seq:
        cold.append(get(api, t))
        warm.append(get(api, t))
    m_seq = metrics(api)
    result["sequential"] = {"cold": summary(cold[: len(seq) - warmed]), "warm_second_request": summary(warm),
                            "loadavg_1m": load_seq[0], "loads": int(m_seq.get("catalog_loads_total", 0)) - warmed}
    b.log(f"sequential: cold {result['sequential']['cold']}, warm {result['sequential']['warm_second_request']}")

    load_burst = b.loadavg()
    burst_lat: list[float] = []
    loads_before = m_seq.get("catalog_loads_total", 0)
    with ThreadPoolExecutor(BURST) as ex:
        for t in tenants[TENANTS:]:
            burst_lat += list(ex.map(lambda _i, t=t: get(api, t), range(BURST)))
    m_end = metrics(api)
    result["burst"] = {**summary(burst_lat), "tenants": BURST_TENANTS,
                       "full_loads": int(m_end.get("catalog_loads_total", 0) - loads_before),
                       "loadavg_1m": load_burst[0]}
    b.log(f"burst: {result['burst']}")
    rss = b.proc_status(rt.pid)
    result["memory"] = {"bytes_held": int(m_end.get("catalog_bytes_held", 0)),
                        "budget_bytes": int(m_end.get("catalog_memory_budget_bytes", 0)),
                        "snapshots_loaded": int(m_end.get("catalog_snapshots_loaded", 0)),
                        "evictions": int(m_end.get("catalog_evictions_total", 0)),
                        "full_loads": int(m_end.get("catalog_loads_total", 0)),
                        "cold_reads": int(m_end.get("catalog_cold_read_seconds_count", 0)),
                        "reads": int(m_end.get("catalog_reads_total", 0)),
                        "rss": rss, "loadavg_1m": b.loadavg()[0]}
    b.log(f"memory: {result['memory']}")
    result["loadavg_end"] = b.loadavg()
    result["total_seconds"] = round(time.time() - t_start, 1)
    with open(OUT, "w") as f:
        json.dump(result, f, indent=2)
    b.log(f"wrote {os.path.relpath(OUT, b.ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        b.stop_all()
