"""The preview tests' app, run inside a sandbox: `python3 preview_app.py PORT [ADDRESS]`.

GET /headers     the request's headers as JSON
POST /hash       the sha256 of the request body, hex
GET /big?mb=N    N MiB of zeros, streamed
GET /sse         event 1, then event 2 once /tmp/sse-go exists
Upgrade: echo    101, then every byte echoed back
"""

import hashlib
import json
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        if self.headers.get("Upgrade", "").lower() == "echo":
            self.send_response(101)
            self.send_header("Upgrade", "echo")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            while True:
                data = self.connection.recv(65536)
                if not data:
                    return
                self.connection.sendall(data)
        if url.path == "/headers":
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.send_body(200, json.dumps(headers).encode())
        elif url.path == "/big":
            mb = int(parse_qs(url.query).get("mb", ["1"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(mb << 20))
            self.end_headers()
            chunk = b"\0" * (1 << 20)
            for _ in range(mb):
                self.wfile.write(chunk)
        elif url.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"data: one\n\n")
            self.wfile.flush()
            deadline = time.monotonic() + 30
            while not os.path.exists("/tmp/sse-go") and time.monotonic() < deadline:
                time.sleep(0.02)
            self.wfile.write(b"data: two\n\n")
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_body(404, b'{"error":"no such path"}')

    def do_POST(self):
        if urlparse(self.path).path != "/hash":
            self.send_body(404, b'{"error":"no such path"}')
            return
        left = int(self.headers.get("Content-Length", "0"))
        digest = hashlib.sha256()
        while left > 0:
            data = self.rfile.read(min(left, 1 << 20))
            if not data:
                break
            digest.update(data)
            left -= len(data)
        self.send_body(200, digest.hexdigest().encode(), "text/plain")


class Server(ThreadingHTTPServer):
    daemon_threads = True


if __name__ == "__main__":
    port = int(sys.argv[1])
    address = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"
    if ":" in address:
        Server.address_family = socket.AF_INET6
    Server((address, port), Handler).serve_forever()
