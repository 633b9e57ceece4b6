#!/usr/bin/env python3
"""Recording HTTP proxy for SCEP traffic.

usage: capture-proxy.py LISTEN_PORT UPSTREAM_BASE OUT_DIR

Every request is written to OUT_DIR as NNN-request.txt (method, path and
query, headers), NNN-request.body (raw body), NNN-message.der (the decoded
message= parameter of a PKIOperation GET, or the POST body), and the
answer from UPSTREAM_BASE (e.g. http://127.0.0.1:8080) as
NNN-response.txt / NNN-response.body. Only 127.0.0.1 is used.
"""
import base64
import http.client
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN_PORT = int(sys.argv[1])
UPSTREAM = urllib.parse.urlsplit(sys.argv[2])
OUT = sys.argv[3]
os.makedirs(OUT, exist_ok=True)
_lock = threading.Lock()
_seq = [0]


def next_seq():
    with _lock:
        _seq[0] += 1
        return _seq[0]


def decode_message(value):
    v = value.replace(" ", "+").replace("\n", "").replace("\r", "")
    v = v.replace("-", "+").replace("_", "/")
    v += "=" * (-len(v) % 4)
    return base64.b64decode(v)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("capture-proxy: " + (fmt % args) + "\n")

    def _handle(self):
        n = next_seq()
        base = os.path.join(OUT, "%03d" % n)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with open(base + "-request.txt", "w") as f:
            f.write("%s %s\n" % (self.command, self.path))
            for k, v in self.headers.items():
                f.write("%s: %s\n" % (k, v))
        with open(base + "-request.body", "wb") as f:
            f.write(body)
        query = urllib.parse.urlsplit(self.path).query
        with open(base + "-query.txt", "w") as f:
            f.write(query + "\n")
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        op = (params.get("operation") or [""])[0]
        if op == "PKIOperation":
            msg = body
            if self.command == "GET" and params.get("message"):
                # undo percent-encoding only; keep '+' as it was sent
                raw = [p for p in query.split("&") if p.startswith("message=")][0]
                msg = decode_message(urllib.parse.unquote(raw[len("message="):]))
            with open(base + "-message.der", "wb") as f:
                f.write(msg)
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=30)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection", "content-length")}
        conn.request(self.command, self.path, body=body if self.command == "POST" else None,
                     headers=headers)
        resp = conn.getresponse()
        rbody = resp.read()
        with open(base + "-response.txt", "w") as f:
            f.write("%d %s\n" % (resp.status, resp.reason))
            for k, v in resp.getheaders():
                f.write("%s: %s\n" % (k, v))
        with open(base + "-response.body", "wb") as f:
            f.write(rbody)
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(rbody)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(rbody)
        conn.close()

    do_GET = _handle
    do_POST = _handle


ThreadingHTTPServer(("127.0.0.1", LISTEN_PORT), Handler).serve_forever()
