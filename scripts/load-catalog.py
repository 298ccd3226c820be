#!/usr/bin/env python3
"""Loads a sample catalog (examples/catalog/*.json) into one store through its admin API.

    scripts/load-catalog.py --base http://127.0.0.1:8000 --host acme.localhost \
        --admin-key KEY examples/catalog/acme-outfitters.json

Categories, then products, then stock per sku. A category or SKU that already exists (409/422)
is skipped, so running it twice is harmless.
"""
import argparse
import json
import sys
import urllib.error
import urllib.request


def call(args, method, path, body):
    req = urllib.request.Request(
        args.base + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={
            "Host": args.host,
            "Content-Type": "application/json",
            "Authorization": "Bearer " + args.admin_key,
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status
    except urllib.error.HTTPError as e:
        if e.code in (409, 422):
            return e.code
        sys.exit(f"{method} {path} on {args.host}: {e.code} {e.read().decode(errors='replace')}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="runtime base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--host", required=True, help="the store's hostname (Host header)")
    p.add_argument("--admin-key", required=True, help="the store's admin key")
    p.add_argument("file", help="catalog JSON: categories, products (with stock per sku)")
    args = p.parse_args()
    catalog = json.load(open(args.file))
    for category in catalog.get("categories", []):
        call(args, "POST", "/api/v1/admin/categories", category)
    products = 0
    for product in catalog.get("products", []):
        stock = product.pop("stock", {})
        if call(args, "POST", "/api/v1/admin/products", product) == 201:
            products += 1
        for sku, available in stock.items():
            call(args, "PUT", f"/api/v1/admin/inventory/{sku}", {"available": available})
    print(f"{args.host}: {products} products loaded")


if __name__ == "__main__":
    main()
