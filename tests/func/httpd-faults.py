#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A small HTTP/1.1 server for the HTTP origin's tests: serves DIR/blobs/sha256/<hex> with
single byte ranges and keep-alive, and injects faults chosen by the request path:

    /blobs/sha256/<hex>                 normal service
    /share/<path>                       normal service of DIR/share/<path> (percent-decoded)
    /f/<FAULT>/blobs/sha256/<hex>       FAULT, e.g. /f/status503x2/blobs/sha256/<hex>

FAULT (a trailing xN: only the first N requests for that path get it, then normal service):
    statusNNN      answer NNN with a short body          (status503x2, status404, status429)
    truncate       206 with the right headers, half the body, close
    long           206 with the right Content-Range, but 500 bytes more body (and length)
    longclose      206 without Content-Length, the range plus extra bytes, close
    wrongrange     Content-Range shifted by one byte (body of the right length)
    wrongtotal     Content-Range total one more than the file's size
    full200        ignore Range: 200 with the whole file
    hang           sleep 60 s before answering            (hangx1: the first request only)
    slow           206 headers, then 1 KiB every 0.5 s
    redirloop      302 to itself
    redir          302 to the normal path
    redirfile      302 to file:///etc/passwd
    bearer-TOKEN   401 unless "Authorization: Bearer TOKEN"
    basic-USER-PW  401 unless basic auth USER:PW

Every connection, request (on arrival) and response (once sent) is logged to --log:
    T conn=N connect
    T conn=N GET PATH range=R auth=A proxy=P
    T conn=N sent PATH status=S bytes=B
T is time.monotonic(); A is 1 with an Authorization header; P is 1 when the request line held
an absolute URL (a proxy request). A client that gives up early leaves no "sent" line.
The listening port is written to --port-file once the server accepts connections.
With --tls-cert and --tls-key it serves HTTPS instead.
"""
import argparse
import base64
import os
import re
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
COUNTS = {}
CONN_ID = [0]
ARGS = None
LOGF = None


def log(line):
    with LOCK:
        LOGF.write("%.3f %s\n" % (time.monotonic(), line))
        LOGF.flush()


def fault_applies(fault, path):
    """Split 'status503x2' into ('status503', True/False) counting hits per fault+path."""
    m = re.fullmatch(r"(.*?)x(\d+)", fault)
    if not m:
        return fault, True
    name, times = m.group(1), int(m.group(2))
    with LOCK:
        n = COUNTS.get((fault, path), 0)
        COUNTS[(fault, path)] = n + 1
    return name, n < times


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "httpd-faults"

    def setup(self):
        super().setup()
        with LOCK:
            CONN_ID[0] += 1
            self.conn_id = CONN_ID[0]
        log("conn=%d connect" % self.conn_id)

    def log_message(self, fmt, *args):  # quiet: our own log only
        pass

    def record(self, status, nbytes):
        log("conn=%d sent %s status=%d bytes=%d" % (self.conn_id, self.req_path, status, nbytes))

    def simple(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.record(status, len(body))

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        raw = self.path
        self.proxied = 0
        if raw.startswith("http://") or raw.startswith("https://"):
            self.proxied = 1
            raw = urllib.parse.urlsplit(raw).path
        self.req_path = raw
        log("conn=%d GET %s range=%s auth=%d proxy=%d" % (
            self.conn_id, raw, self.headers.get("Range", "-"),
            1 if self.headers.get("Authorization") else 0, self.proxied))
        fault = None
        m = re.fullmatch(r"/f/([^/]+)(/blobs/sha256/[0-9a-f]{64})", raw)
        if m:
            fault, raw = m.group(1), m.group(2)
            fault, active = fault_applies(fault, self.req_path)
            if not active:
                fault = None
        m = re.fullmatch(r"/blobs/sha256/([0-9a-f]{64})", raw)
        if not m and raw.startswith("/share/"):
            # in-place blobs (publish --in-place): any file beneath DIR/share, percent-decoded
            raw = urllib.parse.unquote(raw)
            if "/../" in raw or raw.endswith("/.."):
                return self.simple(404, b"no such path\n")
        elif not m:
            return self.simple(404, b"no such path\n")
        if fault and fault.startswith("bearer-"):
            if self.headers.get("Authorization") != "Bearer " + fault[7:]:
                return self.simple(401, b"token needed\n",
                                   [("WWW-Authenticate", "Bearer")])
            fault = None
        if fault and fault.startswith("basic-"):
            user, _, pw = fault[6:].partition("-")
            want = "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.simple(401, b"password needed\n",
                                   [("WWW-Authenticate", 'Basic realm="blobs"')])
            fault = None
        if fault:
            st = re.fullmatch(r"status(\d{3})", fault)
            if st:
                return self.simple(int(st.group(1)), b"injected error\n")
            if fault == "redirloop":
                return self.simple(302, b"", [("Location", self.req_path)])
            if fault == "redir":
                return self.simple(302, b"", [("Location", raw)])
            if fault == "redirfile":
                return self.simple(302, b"", [("Location", "file:///etc/passwd")])
            if fault == "hang":
                time.sleep(60)
                fault = None
        path = os.path.join(ARGS.root, raw.lstrip("/"))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return self.simple(404, b"not found\n")
        size = len(data)
        rng = self.headers.get("Range")
        if fault == "full200" or not rng:
            return self.simple(200, data)
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
        if not m:
            return self.simple(416, b"", [("Content-Range", "bytes */%d" % size)])
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else size - 1
        b = min(b, size - 1)
        if a > b:
            return self.simple(416, b"", [("Content-Range", "bytes */%d" % size)])
        body = data[a:b + 1]
        cr_first, cr_last, total = a, b, size
        if fault == "wrongrange":
            cr_first, cr_last = a + 1, b + 1
        if fault == "wrongtotal":
            total = size + 1
        self.send_response(206)
        self.send_header("Content-Range", "bytes %d-%d/%d" % (cr_first, cr_last, total))
        if fault == "longclose":
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body + b"EXTRA" * 100)
            self.close_connection = True
            return self.record(206, len(body) + 500)
        if fault == "long":
            self.send_header("Content-Length", str(len(body) + 500))
            self.end_headers()
            self.wfile.write(body + b"EXTRA" * 100)
            return self.record(206, len(body) + 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "truncate":
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return self.record(206, len(body) // 2)
        if fault == "slow":
            sent = 0
            try:
                while sent < len(body):
                    self.wfile.write(body[sent:sent + 1024])
                    self.wfile.flush()
                    sent += 1024
                    time.sleep(0.5)
            except OSError:
                pass
            self.close_connection = True
            return self.record(206, min(sent, len(body)))
        self.wfile.write(body)
        self.record(206, len(body))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Clients aborting a transfer on purpose (a wrong range, a deadline) are expected.
        if isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def main():
    global ARGS, LOGF
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate...")
    p.add_argument("--tls-key", help="...and key")
    ARGS = p.parse_args()
    LOGF = open(ARGS.log, "a")
    srv = Server(("127.0.0.1", ARGS.port), Handler)
    if ARGS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        # A client refusing the certificate fails accept(): logged, the server goes on.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, ARGS.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
