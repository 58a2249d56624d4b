"""The preview tests' app, run inside a sandbox: `python3 preview_app.py PORT [ADDRESS]`.

GET /headers     the request's headers as JSON
POST /hash       the sha256 of the request body, hex
GET /big?mb=N    N MiB of zeros, streamed
GET /pattern?mb=N  N MiB, MiB i being bytes 0..=255 repeated and rotated left by i % 256
GET /sse         event 1, then event 2 once /tmp/sse-go exists
GET /cookies     sets the cookies in its query (`?c=a%3D1&c=b%3D2`), one Set-Cookie each
Upgrade: echo    101, then every byte echoed back
Upgrade: websocket  a WebSocket echo server (RFC 6455: text and binary messages echoed,
                    ping answered, close returned)
"""

import base64
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
    # One write per response (http.server flushes after each) and no Nagle: without these a
    # small response waits ~40 ms for a delayed ACK, and latency measures that, not the path.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def send_body(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_mib(self, url, mib):
        """`?mb=N` MiB as a stream, MiB i being `mib(i)`."""
        mb = int(parse_qs(url.query).get("mb", ["1"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(mb << 20))
        self.end_headers()
        for i in range(mb):
            self.wfile.write(mib(i))

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        read = self.rfile.read
        while True:
            head = read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(read(2), "big")
            elif length == 127:
                length = int.from_bytes(read(8), "big")
            mask = read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(read(length)))
            reply = {0x1: 0x1, 0x2: 0x2, 0x9: 0xA, 0x8: 0x8}.get(opcode)
            if reply is None:
                continue
            frame = bytes([0x80 | reply])
            if len(payload) < 126:
                frame += bytes([len(payload)])
            elif len(payload) < 65536:
                frame += bytes([126]) + len(payload).to_bytes(2, "big")
            else:
                frame += bytes([127]) + len(payload).to_bytes(8, "big")
            self.wfile.write(frame + payload)
            self.wfile.flush()
            if opcode == 0x8:
                return

    def do_GET(self):
        url = urlparse(self.path)
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.websocket()
            return
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
        elif url.path == "/cookies":
            self.send_response(204)
            for cookie in parse_qs(url.query).get("c", []):
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif url.path == "/big":
            zeros = b"\0" * (1 << 20)
            self.send_mib(url, lambda i: zeros)
        elif url.path == "/pattern":
            block = bytes(range(256)) * 4096
            self.send_mib(url, lambda i: block[i % 256 :] + block[: i % 256])
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
    # Queue connections as Node's servers do (511) rather than socketserver's 5: with 5,
    # a burst of connections has its SYNs dropped and retried for seconds (the agent's
    # tunnel then answers 504 after its connect bound), which tests the app, not Flint.
    request_queue_size = 511


if __name__ == "__main__":
    port = int(sys.argv[1])
    address = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"
    if ":" in address:
        Server.address_family = socket.AF_INET6
    Server((address, port), Handler).serve_forever()
