#!/usr/bin/env python3
"""Bulk import of a 20,000-product Shopify CSV (issue 16 item 3: goal < 60 s on this machine).

Run through `make -C bench import` (bench/runtime/import_bulk.sh builds the runtime and installs
dynalite first). Everything started here (dynalite, two runtime replicas) listens on 127.0.0.1
only and is stopped on exit, also on Ctrl-C / SIGTERM; the run is bounded by BENCH_IMPORT_TIMEOUT.

Set-up: one empty tenant (dynalite for DynamoDB; the stack's PostgreSQL and Redis), two runtime
replicas A and B. A CSV of BENCH_IMPORT_PRODUCTS products (BENCH_IMPORT_VARIANTS variants each,
with stock, options and an image per variant, Shopify column names) is generated, then:

  POST /api/v1/admin/imports (text/csv) on replica A, and GET the job every 250 ms until it is
  `succeeded`; the time measured is from the POST to the first GET that shows it done.

Then: the catalog is checked on both replicas (search total = products; B caught up through the
change feed), and the same file is imported again (idempotency: 0 products written; its time is
reported too). The machine's 1-minute load average is recorded before and after (it is shared).
Writes results/import.json; `bench/runtime/report.py` renders it into docs/benchmarks.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402  (the runtime bench's helpers: processes, dynalite, HTTP)

PRODUCTS = int(os.environ.get("BENCH_IMPORT_PRODUCTS", "20000"))
VARIANTS = int(os.environ.get("BENCH_IMPORT_VARIANTS", "3"))
TIMEOUT = float(os.environ.get("BENCH_IMPORT_TIMEOUT", "600"))
OUT = os.environ.get("BENCH_IMPORT_OUT", os.path.join(b.BENCH, "results", "import.json"))
SIZES = ["S", "M", "L", "XL", "XXL"]
COLUMNS = ["Handle", "Title", "Body (HTML)", "Vendor", "Type", "Tags", "Option1 Name", "Option1 Value",
           "Option2 Name", "Option2 Value", "Variant SKU", "Variant Grams", "Variant Inventory Qty",
           "Variant Price", "Variant Currency", "Variant Requires Shipping", "Image Src"]


FEED_COUNTERS = ("catalog_loads", "catalog_incremental_applies", "catalog_feed_gaps")


def counters(api: b.Api) -> dict:
    """Full loads, incremental applies and feed gaps a replica counted (/metrics)."""
    for attempt in range(2):
        try:
            st, body = api.req("GET", "/metrics", "localhost")
            break
        except (OSError, http.client.HTTPException):
            if attempt:
                return {}
    out = {}
    if st == 200 and isinstance(body, bytes):
        for line in body.decode().splitlines():
            name, _, value = line.partition(" ")
            for c in FEED_COUNTERS:
                if name == f"storefront_{c}_total":
                    out[c] = int(float(value))
    return out


def get(api: b.Api, path: str, host: str):
    """A GET that retries once on a new connection (the runtime closes idle keep-alives)."""
    try:
        return api.req("GET", path, host)
    except (OSError, http.client.HTTPException):
        return api.req("GET", path, host)


def shopify_csv(n: int, variants: int) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for i in range(n):
        handle = f"bench-product-{i:05d}"
        for k, size in enumerate(SIZES[:variants]):
            first = k == 0
            w.writerow([
                handle,
                f"Bench product {i}" if first else "",
                f"<p>Product number {i}, ships in two days, easy returns.</p>" if first else "",
                "Bench Co" if first else "",
                f"Category {i % 40}" if first else "",
                "bench, import" if first else "",
                "Size" if first else "", size,
                "Colour" if first else "", ["red", "green", "blue"][i % 3],
                f"B{i:05d}-{size}", 250 + 50 * k, (i * 7 + k) % 100,
                f"{5 + (i % 400) + k * 2.5:.2f}", "EUR", "TRUE",
                f"https://img.example/{i}/{size}.jpg",
            ])
    return out.getvalue().encode()


def post_file(port: int, host: str, token: str, body: bytes) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/api/v1/admin/imports", body,
                 {"Host": host, "Authorization": f"Bearer {token}", "Content-Type": "text/csv"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data)


def wait_job(api: b.Api, host: str, token: str, job_id: str, t0: float) -> tuple[dict, float]:
    end = t0 + TIMEOUT
    while time.time() < end:
        st, job = api.req("GET", f"/api/v1/admin/imports/{job_id}", host, token=token)
        if st != 200:
            raise RuntimeError(f"GET job: {st} {str(job)[:300]}")
        if job["status"] not in ("queued", "running"):
            return job, time.time() - t0
        time.sleep(0.25)
    raise RuntimeError(f"import not done after {TIMEOUT} s")


def main() -> int:
    signal.signal(signal.SIGTERM, b.on_signal)
    signal.signal(signal.SIGINT, b.on_signal)
    binary = os.environ.get("BENCH_RUNTIME_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(b.ROOT, "target")), "release", "emporium-storefront")
    if not os.path.exists(binary):
        raise SystemExit(f"no runtime binary at {binary}: run bench/runtime/import_bulk.sh")
    db_admin = os.environ.get("DATABASE_URL")
    if not db_admin or not os.environ.get("REDIS_URL"):
        raise SystemExit("DATABASE_URL (a superuser) and REDIS_URL are needed (see .state/env)")
    work = os.path.join(b.RAW, "import")
    os.makedirs(work, exist_ok=True)
    result: dict = {"schema": 1, "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": b.machine_info(binary), "loadavg_start": b.loadavg(),
                    "config": {"products": PRODUCTS, "variants_per_product": VARIANTS,
                               "store": "dynalite (in memory) for DynamoDB; shared PostgreSQL and Redis",
                               "replicas": 2,
                               "build": os.environ.get("BENCH_BUILD_NOTE", "release")}}

    u = urllib.parse.urlsplit(db_admin)
    bench_db = "emporium_bench_import"
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
    tables = {k: f"bench-imp-{k}" for k in ("catalog", "carts", "sessions")}
    for tbl in tables.values():
        ddb.create_table(tbl)
    t = b.Tenant(f"bench-imp-{tag}", PRODUCTS, tables, "dedicated")
    tenants_file = os.path.join(work, "tenants.json")
    with open(tenants_file, "w") as f:
        json.dump([t.config(dsn)], f)
    os.chmod(tenants_file, 0o600)
    b.secret_files.append(tenants_file)

    body = shopify_csv(PRODUCTS, VARIANTS)
    result["file"] = {"bytes": len(body), "rows": PRODUCTS * VARIANTS}
    b.log(f"generated {PRODUCTS} products x {VARIANTS} variants: {len(body) / 1e6:.1f} MB")

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
    _, rb = reps["B"]
    # Both replicas hold the (empty) catalog before the import, as serving replicas would.
    for api in (a, rb):
        get(api, "/api/v1/products?limit=1", t.host)

    cpu0 = b.cpu_s(a_proc.pid)
    t0 = time.time()
    st, job = post_file(a.port, t.host, t.admin_key, body)
    if st != 202:
        raise RuntimeError(f"POST import: {st} {str(job)[:300]}")
    accepted_s = time.time() - t0
    job, took = wait_job(a, t.host, t.admin_key, job["id"], t0)
    cpu = b.cpu_s(a_proc.pid) - cpu0
    result["loadavg_after_import"] = b.loadavg()
    if job["status"] != "succeeded" or job["rows_failed"]:
        raise RuntimeError(f"import ended {job['status']}: {json.dumps(job)[:500]}")
    b.log(f"imported {PRODUCTS} products in {took:.1f} s (accepted after {accepted_s:.2f} s)")
    totals = {}
    for name, api in (("A", a), ("B", rb)):
        st, res = get(api, "/api/v1/search?limit=1", t.host)
        totals[name] = res.get("total") if st == 200 else st
    if totals != {"A": PRODUCTS, "B": PRODUCTS}:
        raise RuntimeError(f"catalog totals after import: {totals}")
    replica_counters = {name: counters(api) for name, api in (("A", a), ("B", rb))}

    t1 = time.time()
    st, again = post_file(a.port, t.host, t.admin_key, body)
    if st != 202:
        raise RuntimeError(f"POST import again: {st} {str(again)[:300]}")
    again, again_s = wait_job(a, t.host, t.admin_key, again["id"], t1)
    result["import"] = {"seconds": round(took, 2), "accepted_after_s": round(accepted_s, 2),
                        "runtime_cpu_s": round(cpu, 2), "products_per_s": round(PRODUCTS / took),
                        "rows_done": job["rows_done"], "products_written": job["products_written"],
                        "search_total": totals, "goal_s": 60, "met": took < 60}
    result["reimport"] = {"seconds": round(again_s, 2), "products_written": again["products_written"],
                          "products_unchanged": again["products_unchanged"]}
    result["replica_counters"] = replica_counters
    result["loadavg_end"] = b.loadavg()
    with open(OUT, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    b.log(f"wrote {OUT}: {json.dumps(result['import'])}; again {json.dumps(result['reimport'])}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        b.stop_all()
