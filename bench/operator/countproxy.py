"""A counting reverse proxy in front of the API server: plain HTTP on 127.0.0.1 in, TLS with the
kubeconfig's client certificate out. Counts every request by (verb, resource); streams watches.
Used only for the resync / steady-state phases (it adds latency, so not for the timed run)."""

from __future__ import annotations

import http.server
import re
import threading
from urllib.parse import urlsplit, parse_qs

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def classify(method: str, path: str) -> str:
    u = urlsplit(path)
    q = parse_qs(u.query)
    parts = [p for p in u.path.split("/") if p]
    # /api/v1/... or /apis/group/version/...
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else parts
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]
    resource = rest[0] if rest else u.path
    if len(rest) >= 3:
        resource += "/" + rest[2]  # subresource (status)
    named = len(rest) >= 2
    if method == "GET":
        verb = "WATCH" if q.get("watch", ["false"])[0] in ("true", "1") else ("GET" if named else "LIST")
    else:
        verb = method
    return f"{verb} {resource}"


class CountingProxy:
    def __init__(self, api):
        self.api = api
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _do(self):
                key = classify(self.command, self.path)
                with proxy.lock:
                    proxy.counts[key] = proxy.counts.get(key, 0) + 1
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "authorization")}
                c = proxy.api.conn()
                c.timeout = None
                try:
                    c.request(self.command, self.path, body=body, headers=hdrs)
                    r = c.getresponse()
                    self.send_response(r.status)
                    for k, v in r.getheaders():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(k, v)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    while True:
                        chunk = r.read1(65536)
                        if not chunk:
                            break
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                finally:
                    c.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _do

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.counts)

    def close(self):
        self.server.shutdown()


def writes(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if k.split()[0] in WRITE_METHODS}


def reads(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if k.split()[0] not in WRITE_METHODS}


def diff(a: dict, b: dict) -> dict:
    return {k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0) > 0}


_ = re
