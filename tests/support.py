"""Real TCP peers for tests: echo, source and closing servers on 127.0.0.1, in threads."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

from harness.wait import poll


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class TcpServer:
    """A threaded TCP server on a free loopback port running handle(sock) per connection."""

    def __init__(self, handle: Callable[[socket.socket], None]):
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    handle(self.request)
                except OSError:
                    pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> TcpServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def echo(sock: socket.socket) -> None:
    while data := sock.recv(65536):
        sock.sendall(data)


def source(nbytes: int, then_close: bool = True) -> Callable[[socket.socket], None]:
    """Sends nbytes of a known pattern, then closes (or waits for the client to close)."""

    def handle(sock: socket.socket) -> None:
        sock.sendall(pattern(nbytes))
        if then_close:
            sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass

    return handle


def pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def connect(address: str, timeout: float = 5.0) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds for payload to come back through an echo server."""
    start = time.perf_counter()
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during round trip")
        received += chunk
    assert received == payload
    return time.perf_counter() - start


def read_all(sock: socket.socket) -> tuple[bytes, list[int]]:
    """Everything until EOF, and the size of each recv()."""
    data, sizes = b"", []
    while chunk := sock.recv(65536):
        data += chunk
        sizes.append(len(chunk))
    return data, sizes


def wait_for(
    condition: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
    on_fail: Callable[[], str] = lambda: "",
):
    """Poll condition until truthy (harness.wait.poll); its value, or AssertionError at the deadline."""
    polled = poll(condition, timeout=timeout, interval=interval)
    if not polled.ok:
        raise AssertionError(f"{what} not met within {timeout}s\n{on_fail()}".rstrip())
    return polled.value


def refuses(address: str) -> bool:
    try:
        connect(address, timeout=1.0).close()
        return False
    except ConnectionRefusedError:
        return True


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """A request handler for stub HTTP endpoints: send_json() answers, nothing is logged."""

    def send_json(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server of `handler` on a free 127.0.0.1 port: its base URL, shut down after."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
