"""An HTTP proxy in front of the S3 test server that injects faults.

Each request is forwarded to the server unless a fault is drawn for it
(with probability ``rate``, among ``kinds``):

- ``error``: a 503 ``SlowDown`` reply; the request never reaches storage.
- ``error_after``: the request takes effect, then the reply is a 500.
- ``reset``: the connection is reset; the request never reaches storage.
- ``reset_after``: the request takes effect, then the connection is reset
  (a lost reply: the client cannot tell it from ``reset``).
- ``truncate``: the reply's headers promise the whole body, then the
  connection closes half-way through it.
- ``latency``: the request is forwarded after 50-500 ms.

``only`` narrows the faults to requests whose ``"METHOD path"`` matches one
of the given regular expressions (e.g. ``r"^DELETE .*/_apiary/inbox/"``). Signatures
stay valid because the client's ``Host`` header is forwarded unchanged.
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("error", "error_after", "reset", "reset_after", "truncate", "latency")

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class _Reset(Exception):
    """The handler reset its client connection; stop serving it."""


class FaultProxy:
    def __init__(self, target: tuple[str, int], rate: float = 0.0, kinds=KINDS, only=(), seed=None):
        self.target = target
        self.rate = rate
        self.kinds = tuple(kinds)
        self.only = tuple(only)
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.injected: Counter = Counter()
        self.forwarded = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def handle(self):
                try:
                    super().handle()
                except (_Reset, ConnectionError, OSError):
                    pass

            def _any(self):
                proxy.serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def draw(self, request_line: str):
        with self.lock:
            if self.only and not any(re.search(o, request_line) for o in self.only):
                return None
            if self.random.random() >= self.rate:
                return None
            kind = self.random.choice(self.kinds)
            self.injected[kind] += 1
            return kind

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        fault = self.draw(f"{handler.command} {handler.path}")
        if fault == "reset":
            _reset(handler)
        if fault == "error":
            _reply(handler, 503, _s3_error("SlowDown", "injected fault"), {"Content-Type": "application/xml"})
            return
        if fault == "latency":
            time.sleep(self.random.uniform(0.05, 0.5))
        status, headers, payload = self.forward(handler, body)
        if fault == "reset_after":
            _reset(handler)
        if fault == "error_after":
            _reply(handler, 500, _s3_error("InternalError", "injected fault"), {"Content-Type": "application/xml"})
            return
        if fault == "truncate" and handler.command != "HEAD" and len(payload) > 1:
            handler.send_response(status)
            for name, value in headers:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload[: len(payload) // 2])
            handler.wfile.flush()
            _reset(handler)
        _reply(handler, status, payload, dict(headers), head=handler.command == "HEAD")

    def forward(self, handler: BaseHTTPRequestHandler, body: bytes):
        conn = http.client.HTTPConnection(*self.target, timeout=60)
        try:
            conn.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
            for name, value in handler.headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    conn.putheader(name, value)
            if body or handler.command in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            payload = response.read()
            headers = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"
            ]
            if handler.command == "HEAD":
                length = response.getheader("Content-Length")
                if length is not None:
                    headers.append(("Content-Length", length))
            with self.lock:
                self.forwarded += 1
            return response.status, headers, payload
        finally:
            conn.close()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _reply(handler, status: int, payload: bytes, headers: dict, head: bool = False) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        if name.lower() != "content-length" or head:
            handler.send_header(name, value)
    if not head:
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
    else:
        handler.end_headers()
    handler.wfile.flush()


def _reset(handler: BaseHTTPRequestHandler) -> None:
    sock: socket.socket = handler.connection
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    finally:
        raise _Reset()


def _s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()
