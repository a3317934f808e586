"""HAProxy from Debian as the Control Plane's load balancer, with health probes per instance."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from harness.lab import proc
from harness.wait import poll

CONFIG = """\
global
    maxconn {maxconn}
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 1s
{retry_lines}
    option http-server-close
    errorfile 503 {errorfile}

frontend api
    bind {host}:{port}
    default_backend controlplane

backend controlplane
    balance roundrobin
    option httpchk GET /health/live
    default-server inter {inter_ms}ms fall 2 rise 1
{servers}
"""


# What clients get when no instance is healthy: a clear, machine-readable refusal.
UNAVAILABLE = (
    b"HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nConnection: close\r\n"
    b"Content-Type: application/json\r\n\r\n"
    b'{"error": "Control Plane API unavailable: no healthy instance behind the load balancer", '
    b'"cause": "api"}\n'
)


class HAProxyMissing(RuntimeError):
    pass


class LoadBalancer:
    """One HAProxy process in front of `backends` ({name: "host:port"}), probing /health/live.

    Failed probes (`fall` 2 at `inter`) take an instance out of rotation; a refused connection is
    retried on another instance (`retry-on conn-failure`, `redispatch`), so a killed instance costs
    clients nothing beyond the probe interval.

    Only a connection that failed before the request was sent is retried, never a request an
    instance received: one that closed without answering may have committed it (an approval, then
    the crash), and another instance's answer to the re-sent request (a 503 "nothing written")
    would then stand for a write that was made. HAProxy's `empty-response`, `response-timeout` and
    status retries re-send such requests, POSTs included (configuration manual, `retry-on`: "very
    dangerous to use any retry-on value beside conn-failure and none" without replay protection),
    so they are not used: the client gets a 502 or 504, which it counts as indeterminate.
    """

    def __init__(
        self,
        workdir: Path,
        backends: dict[str, str],
        port: int,
        host: str = "127.0.0.1",
        inter_ms: int = 500,
        binary: str | None = None,
        checks: bool = True,
        retries: bool = True,
    ):
        """checks/retries False make a deliberately misconfigured balancer (negative drills)."""
        self.binary = binary or shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(self.binary).exists():
            raise HAProxyMissing(
                "HAProxy is missing: install it with `apt-get install haproxy` (./run does this when run as root)"
            )
        self.workdir, self.backends, self.host, self.port = workdir, backends, host, port
        self.inter_ms = inter_ms
        self.maxconn = 2000
        self.checks, self.retries = checks, retries
        self.config = workdir / "haproxy.cfg"
        self.socket = workdir / "haproxy.sock"
        self.process: proc.ProcessHandle | None = None  # a Popen here, a ContainerProcess in the container lab

    @property
    def probe_window(self) -> float:
        """Seconds until a dead instance is out of rotation: `fall` (2) failed probes, `inter` apart,
        plus one interval for the probe in flight."""
        return 3 * self.inter_ms / 1000.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_config(self) -> None:
        check = " check" if self.checks else ""
        servers = "\n".join(f"    server {name} {address}{check}" for name, address in self.backends.items())
        retry_lines = (
            "    retries 2\n    option redispatch\n    retry-on conn-failure" if self.retries else "    retries 0"
        )
        errorfile = self.workdir / "503.http"
        errorfile.write_bytes(UNAVAILABLE)
        self.config.write_text(
            CONFIG.format(
                maxconn=self.maxconn,
                socket=self.socket,
                host=self.host,
                port=self.port,
                inter_ms=self.inter_ms,
                servers=servers,
                errorfile=errorfile,
                retry_lines=retry_lines,
            )
        )

    def start(self, timeout: float = 10.0) -> int:
        self.write_config()
        log = open(self.workdir / "haproxy.log", "ab")
        self.process = process = subprocess.Popen(
            [self.binary, "-db", "-f", str(self.config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()

        def state() -> str | None:
            if process.poll() is not None:
                return "exited"
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return "listening"
            except OSError:
                return None

        polled = poll(state, until=lambda s: s is not None, timeout=timeout)
        if polled.value == "exited":
            raise RuntimeError(
                f"HAProxy exited ({process.returncode}): {(self.workdir / 'haproxy.log').read_text()[-500:]}"
            )
        if not polled.ok:
            raise RuntimeError(f"HAProxy did not listen on {self.host}:{self.port} within {timeout}s")
        return process.pid

    def server_states(self) -> dict[str, str]:
        """{instance: "UP"|"DOWN"|...} from HAProxy's stats socket."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(self.socket))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        states = {}
        for line in data.decode().splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == "controlplane" and fields[1] in self.backends:
                states[fields[1]] = fields[17]
        return states

    def stop(self) -> None:
        process, self.process = self.process, None
        proc.stop_process(process)
