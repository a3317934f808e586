"""Chooses the fault server: TOXIPROXY_URL, else a toxiproxy-server binary on PATH, else the embedded one.

All three are then driven by the same code over the same HTTP API.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..net import free_port


class ToxiproxyUnavailable(RuntimeError):
    """The fault server could not be reached or started; the message says why and what to do."""


def api_version(url: str, timeout: float = 1.0) -> str | None:
    """The server's version, or None when nothing answers at url."""
    try:
        with urllib.request.urlopen(f"{url}/version", timeout=timeout) as response:
            version: str = json.loads(response.read()).get("version", "?")
            return version
    except (OSError, ValueError, urllib.error.URLError):
        return None


@dataclass
class ToxiproxyServer:
    """A running (or external) fault server. stop() ends only what this process started."""

    url: str
    kind: str  # "external", "binary" or "embedded"
    process: subprocess.Popen[Any] | None = None
    version: str = ""
    log_path: str | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return self.url.split("//", 1)[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        if proc.stdout:
            proc.stdout.close()

    def __enter__(self) -> ToxiproxyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_ready(url: str, proc: subprocess.Popen[Any], deadline: float) -> str:
    while time.monotonic() < deadline:
        version = api_version(url, timeout=0.5)
        if version is not None:
            return version
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise ToxiproxyUnavailable(f"fault server at {url} did not answer (exit code {proc.poll()})")


def start_embedded(
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 15.0,
    read_timeout: float | None = None,
    allow_listen: Sequence[str] = (),
    max_connections: int | None = None,
    log_path: str | None = None,
) -> ToxiproxyServer:
    """The embedded server as a subprocess; it dies with this process (--exit-with-parent).
    read_timeout: its --read-timeout (seconds a client has for a request head, and for a body);
    allow_listen: its --allow-listen (addresses besides loopback proxies may listen on);
    max_connections: its --max-connections-per-proxy; log_path: a file for its log (else none)."""
    extra = ["--read-timeout", str(read_timeout)] if read_timeout is not None else []
    if allow_listen:
        extra += ["--allow-listen", ",".join(allow_listen)]
    if max_connections is not None:
        extra += ["--max-connections-per-proxy", str(max_connections)]
    log = open(log_path, "ab") if log_path else None
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.toxiproxy",
                "--host",
                host,
                "--port",
                str(port),
                "--exit-with-parent",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
            text=True,
        )
    finally:
        if log is not None:
            log.close()  # the child has its own descriptor
    assert proc.stdout is not None  # stdout=PIPE above
    line = proc.stdout.readline().strip()  # "listening HOST:PORT", printed once bound
    if not line.startswith("listening "):
        proc.kill()
        proc.wait()
        raise ToxiproxyUnavailable(f"embedded fault server did not start on {host}:{port} (is the port in use?)")
    url = f"http://{line.split()[1]}"
    server = ToxiproxyServer(url, "embedded", proc, log_path=log_path)
    server.version = _wait_ready(url, proc, time.monotonic() + timeout)
    return server


def start_binary(binary: str, timeout: float = 15.0) -> ToxiproxyServer:
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-host", "127.0.0.1", "-port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    server = ToxiproxyServer(url, "binary", proc)
    try:
        server.version = _wait_ready(url, proc, time.monotonic() + timeout)
    except ToxiproxyUnavailable:
        server.stop()
        raise
    return server


def start_toxiproxy(env: dict[str, str] | None = None) -> ToxiproxyServer:
    """1. TOXIPROXY_URL set: use that server (must answer); 2. a toxiproxy-server binary on
    PATH: start it on a free loopback port; 3. otherwise start the embedded server."""
    env = dict(os.environ) if env is None else env
    url = env.get("TOXIPROXY_URL", "").rstrip("/")
    if url:
        version = api_version(url, timeout=3.0)
        if version is None:
            raise ToxiproxyUnavailable(
                f"TOXIPROXY_URL={url} does not answer GET /version; start "
                f"that server or unset TOXIPROXY_URL to use the embedded one"
            )
        return ToxiproxyServer(url, "external", None, version)
    binary = shutil.which("toxiproxy-server", path=env.get("PATH"))
    if binary:
        return start_binary(binary)
    return start_embedded()
