"""Embedded AWS stand-in: moto in server mode (S3, SQS, ...) as a subprocess on loopback.

Lifecycle of a ``MotoServer``:

1. reap the leftovers of earlier harness runs whose owner process is dead;
2. register the lab (its id is in the server's command line, so the reaper can tell a
   reused pid from ours) and a private temp dir holding the server log;
3. start ``moto.server`` on a free 127.0.0.1 port in its own session, register its pid;
4. poll ``/moto-api/`` until it answers (deadline; fails early, with the log tail, if the
   process exits);
5. ``down()``: SIGTERM, then SIGKILL whatever is left (and any child), remove the dir and
   the registration. Idempotent, and run by the context manager also on Ctrl-C.

With ``tls=True`` (pgBackRest's S3 driver speaks only TLS) the server serves https with a
certificate from a lab CA made for this server (harness.lab.tlsca) in its temp dir:
``ca_file`` is what a client trusts; the readiness check trusts only that CA. The keys go
with the dir on ``down()``. That server also keeps connections alive between requests (HTTP/1.1,
TCP_NODELAY) and ends each with a TLS close_notify (see serve_tls): an S3 request costs
about 3 ms instead of 45. Plain http (tls=False) runs moto's server unchanged.

moto keeps its state in memory: a restart loses every bucket and object; ``reset()``
empties it without a restart.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

from harness.lab import proc, reaper
from harness.lab.tlsca import LabCA
from harness.net import free_port
from harness.wait import poll

LOOPBACK = "127.0.0.1"

# `python -m moto.server` cannot carry our tag (its argparse refuses unknown arguments), so
# the tag rides as a spare argv item that this launcher drops before calling moto's main.
_LAUNCH = "import sys; from moto.server import main; main(sys.argv[2:])"
# With TLS, werkzeug's server is patched first (see serve_tls); {idle} is the idle timeout.
_LAUNCH_TLS = "import sys; from harness.lab.moto import serve_tls; serve_tls(sys.argv[2:], {idle!r})"
_CLOSE_NOTIFY_TIMEOUT = 2.0
# A kept-alive connection that carries no request for this long is closed (with close_notify).
# pgBackRest reopens such a connection by itself (one retry, about 0.1 s).
IDLE_TIMEOUT = 30.0
# What the application left unread of a request body is read and dropped up to this many bytes
# before the next request; past it the connection closes instead.
_SKIP_MAX = 1 << 20


def serve_tls(argv: list[str], idle_timeout: float = IDLE_TIMEOUT) -> None:
    """moto.server.main(argv) with HTTP/1.1 keep-alive, each TLS connection ended with close_notify.

    - werkzeug answers every request with "Connection: close": every S3 request was a new TCP
      connection and TLS handshake. The handler from keepalive_handler() keeps the connection
      open between requests (see there).
    - werkzeug writes the headers and the body of a response apart; with Nagle's algorithm on,
      the body waited for the client's delayed ACK of the headers (40 ms on Linux loopback):
      every request took about 45 ms. The handler sets TCP_NODELAY.
    - werkzeug closes the socket without a TLS close_notify; pgBackRest (OpenSSL 3) reads on to
      the end of the connection, takes the bare EOF for a truncation attack ("unexpected eof
      while reading"), and retries until it gives up. unwrap() sends the alert (and waits a
      moment for the client's) on every connection the server closes: after a request that asked
      for it, an idle timeout, or an error."""
    import moto.server
    import werkzeug.serving

    plain_shutdown = werkzeug.serving.BaseWSGIServer.shutdown_request

    def shutdown_request(self: werkzeug.serving.BaseWSGIServer, request: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(_CLOSE_NOTIFY_TIMEOUT)
                request.unwrap()
            except (OSError, ValueError):
                pass  # the client went first, or without an alert: nothing more to say
        plain_shutdown(self, request)

    werkzeug.serving.BaseWSGIServer.shutdown_request = shutdown_request  # type: ignore[method-assign, assignment]
    handler = keepalive_handler(moto.server.MotoRequestHandler, idle_timeout)
    moto.server.MotoRequestHandler = handler  # type: ignore[misc]
    moto.server.main(argv)


class _RequestBody(io.RawIOBase):
    """A request's body: at most length bytes of the connection's stream, counted, so that what
    the application leaves unread can be skipped before the next request on the connection."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self.left = length
        self.cut = False  # the client closed the connection inside the body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        got = self._stream.readinto(view[: self.left])  # type: ignore[attr-defined]
        if not got:
            self.cut = True
            self.left = 0
            return 0
        self.left -= got
        return got

    def skip_rest(self, most: int) -> bool:
        """Read and drop what is left, if it is at most `most` bytes: True when the body was read
        to its end (the next request starts at the next byte)."""
        if self.left > most:
            return False
        while self.left > 0:
            if not self.read(min(self.left, 1 << 16)):
                break
        return not self.cut


def keepalive_handler(base: type[Any], idle_timeout: float = IDLE_TIMEOUT) -> type[Any]:
    """A subclass of werkzeug's WSGIRequestHandler `base` (moto's) that keeps connections alive.

    werkzeug (3.x) closes every connection because, after a response, it cannot tell where the
    next request starts: it reads and drops whatever the client has sent by then. This handler
    knows: a request body has a Content-Length and is read through a counting reader, and what
    the application left unread (at most 1 MiB, else the connection closes) is skipped. A
    response carries a Content-Length, or is chunked. The connection closes, with
    "Connection: close", when the request asks for it or is HTTP/1.0, when its body is chunked,
    on an application error, when a response's length is unknown or wrong, or after idle_timeout
    seconds without a request."""

    class KeepAliveHandler(base):
        protocol_version = "HTTP/1.1"
        timeout = idle_timeout  # also bounds a read or write that stalls inside a request

        def setup(self) -> None:
            # Headers and body are separate writes: without this, the body waits for the
            # client's delayed ACK of the headers (Nagle), 40 ms a response.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().setup()

        def run_wsgi(self) -> None:
            if self.request_version != "HTTP/1.1" or "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self.close_connection = True
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            environ = self.environ = self.make_environ()
            body: _RequestBody | None = None
            if not self.close_connection:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0:
                    self.close_connection = True
                else:
                    body = _RequestBody(self.rfile, length)
                    environ["wsgi.input"] = io.BufferedReader(body)
            response = _Response(self, environ["REQUEST_METHOD"] == "HEAD")
            try:
                chunks = self.server.app(environ, response.start)
                try:
                    for chunk in chunks:
                        response.write(chunk)
                    response.end()
                finally:
                    if hasattr(chunks, "close"):
                        chunks.close()
            except (ConnectionError, TimeoutError, ssl.SSLError):
                self.close_connection = True  # the client went away: nothing to answer
                return
            except Exception:
                self.close_connection = True
                self.log_error("Error on request:\n%s", traceback.format_exc())
                if response.status_sent is None:
                    response.fail()
                return
            if body is None or not body.skip_rest(_SKIP_MAX):
                self.close_connection = True

    return KeepAliveHandler


class _Response:
    """One response of KeepAliveHandler: WSGI's start_response and write, framed for keep-alive."""

    def __init__(self, handler: Any, head: bool) -> None:
        self.handler = handler
        self.head = head
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.status_sent: str | None = None
        self.length: int | None = None  # the Content-Length the application gave
        self.written = 0
        self.chunked = False
        self.bodiless = head

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None and self.status_sent is not None:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, list(headers)
        return self.write

    def _send_head(self) -> None:
        handler = self.handler
        assert self.status is not None, "write() before start_response"
        code_text, _, message = self.status.partition(" ")
        code = int(code_text)
        headers = [
            (k, v) for k, v in self.headers if k.lower() not in ("connection", "keep-alive", "transfer-encoding")
        ]
        for key, value in headers:
            if key.lower() == "content-length":
                self.length = int(value)
        self.bodiless = self.head or 100 <= code < 200 or code in (204, 304)
        if self.length is None and not self.bodiless and not handler.close_connection:
            self.chunked = True  # else the body ends with the connection
            headers.append(("Transfer-Encoding", "chunked"))
        self.status_sent = self.status
        handler.send_response(code, message)
        for key, value in headers:
            handler.send_header(key, value)
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if self.bodiless:
            self.length = 0  # nothing follows the headers, whatever the length says

    def write(self, data: bytes) -> None:
        if self.status_sent is None:
            self._send_head()
        if not data or self.bodiless:
            return
        self.written += len(data)
        if self.chunked:
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.handler.wfile.write(data)

    def end(self) -> None:
        if self.status_sent is None:
            self._send_head()
        if self.chunked:
            self.handler.wfile.write(b"0\r\n\r\n")
        elif self.length is not None and self.written != self.length:
            self.handler.close_connection = True  # the client cannot tell where the response ended
        self.handler.wfile.flush()

    def fail(self) -> None:
        """A bare 500 when the application failed before its status line went out."""
        self.status, self.headers = "500 INTERNAL SERVER ERROR", [("Content-Length", "0")]
        self.handler.close_connection = True
        self.end()


class MotoStartError(RuntimeError):
    """moto did not start or answer in time; the message holds its log tail."""


class MotoServer:
    """A moto server on 127.0.0.1; use as a context manager.

    with MotoServer() as moto:
        moto.client("s3").create_bucket(Bucket="drill-probe")
    """

    def __init__(
        self,
        port: int | None = None,
        state_dir: str | os.PathLike | None = None,
        base_dir: str | os.PathLike | None = None,
        start_timeout: float = 30.0,
        python: str | None = None,
        tls: bool = False,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.host = LOOPBACK
        self.port = port
        self.state_dir = state_dir
        self.base_dir = Path(base_dir or tempfile.gettempdir())
        self.start_timeout = start_timeout
        self.python = python or sys.executable
        self.tls = tls
        self.idle_timeout = idle_timeout
        self.ca: LabCA | None = None
        self.lab_id = "drillmoto-" + secrets.token_hex(4)
        self.root = Path()
        self.process: subprocess.Popen | None = None
        self._registration: reaper.Registration | None = None
        self._lock = threading.Lock()
        self._down = False

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The lab CA's certificate a client trusts (tls=True), else None."""
        return self.ca.ca_cert if self.ca is not None else None

    @property
    def logfile(self) -> Path:
        return self.root / "moto.log"

    def client(self, service: str = "s3", region: str = "us-east-1") -> Any:
        """A boto3 client of this server: its endpoint, the lab's keys (moto takes any), and with
        tls=True trusting only the lab CA."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=region,
            aws_access_key_id="lab",
            aws_secret_access_key="lab",
            verify=str(self.ca_file) if self.ca_file is not None else None,
        )

    # ---- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> MotoServer:
        try:
            return self.start()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc) -> None:
        self.down()

    def start(self) -> MotoServer:
        """Start the server and wait until it answers (see the module docstring)."""
        reaper.reap_stale(self.state_dir)
        self._registration = reaper.Registration(self.lab_id, "moto", tag=self.lab_id, directory=self.state_dir)
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.lab_id}-", dir=self.base_dir))
        self._registration.add_dir(self.root)
        self.port = self.port or free_port()
        env = {**os.environ, "MOTO_PORT": str(self.port)}
        tls_args: list[str] = []
        if self.tls:
            self.ca = LabCA.create(self.root)
            tls_args = ["--ssl-cert", str(self.ca.server_cert), "--ssl-key", str(self.ca.server_key)]
        with open(self.logfile, "wb") as log:
            self.process = subprocess.Popen(
                [
                    self.python,
                    "-c",
                    _LAUNCH_TLS.format(idle=float(self.idle_timeout)) if self.tls else _LAUNCH,
                    self.lab_id,
                    "-H",
                    self.host,
                    "-p",
                    str(self.port),
                    *tls_args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        self._registration.add_pid(self.process.pid)
        self._wait_ready(self.process, time.monotonic() + self.start_timeout)
        return self

    def _answers(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca.ca_cert)) if self.ca is not None else None
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1.0, context=context) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _wait_ready(self, process: subprocess.Popen, deadline: float) -> None:
        def state() -> str | None:
            if self._answers():
                return "up"
            return "exited" if process.poll() is not None else None

        polled = poll(state, until=lambda s: s is not None, timeout=max(0.0, deadline - time.monotonic()))
        if polled.value == "exited":
            raise MotoStartError(
                f"moto exited with status {process.returncode} while starting "
                f"on {self.host}:{self.port}\n--- tail of {self.logfile} ---\n"
                f"{self.log_tail()}"
            )
        if not polled.ok:
            raise MotoStartError(
                f"moto did not answer on {self.endpoint_url} within "
                f"{self.start_timeout:.0f} s\n--- tail of {self.logfile} ---\n"
                f"{self.log_tail()}"
            )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reset(self) -> None:
        """Empty every moto backend (all buckets, queues, ...) without a restart."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        context = ssl.create_default_context(cafile=str(self.ca.ca_cert)) if self.ca is not None else None
        with urllib.request.urlopen(request, timeout=10.0, context=context):
            pass

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no moto log)"

    def down(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL), remove its dir and registration. Idempotent.

        Raises RuntimeError only when a process survives SIGKILL; the registration is then
        kept so that a later reap_stale() retries.
        """
        with self._lock:
            if self._down:
                return
            self._down = True
        survivors: list[int] = []
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()  # moto exits 0 on SIGTERM
                try:
                    self.process.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    pass
            # Only a pid we have not reaped yet is still ours; anything else must carry our tag.
            roots = proc.pids_matching(self.lab_id)
            if self.process.poll() is None:
                roots.append(self.process.pid)
            survivors = proc.kill_tree(roots, timeout=10.0)
            try:
                self.process.wait(timeout=1.0)  # reap our child: no zombie left behind
            except subprocess.TimeoutExpired:
                pass
            if self._registration is not None and not survivors:
                self._registration.remove_pid(self.process.pid)
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)
        if self._registration is not None:
            if survivors:
                raise RuntimeError(f"moto lab {self.lab_id}: pids {survivors} survived SIGKILL")
            self._registration.close()
