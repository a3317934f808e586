"""HAProxy from Debian as the Control Plane's load balancer, with health probes per instance."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from harness.lab import proc

CONFIG = """\
global
    maxconn 2000
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    retries 2
    option redispatch
    retry-on conn-failure empty-response
    option http-server-close

frontend api
    bind {host}:{port}
    default_backend controlplane

backend controlplane
    balance roundrobin
    option httpchk GET /health/live
    default-server inter {inter_ms}ms fall 2 rise 1
{servers}
"""


class HAProxyMissing(RuntimeError):
    pass


class LoadBalancer:
    """One HAProxy process in front of `backends` ({name: "host:port"}), probing /health/live.

    Failed probes (`fall` 2 at `inter`) take an instance out of rotation; a refused connection is
    retried on another instance (`retry-on conn-failure`, `redispatch`), so a killed instance costs
    clients nothing beyond the probe interval.
    """

    def __init__(self, workdir: Path, backends: dict[str, str], port: int, host: str = "127.0.0.1",
                 inter_ms: int = 500, binary: str | None = None):
        self.binary = binary or shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(self.binary).exists():
            raise HAProxyMissing("HAProxy is missing: install it with `apt-get install haproxy` "
                                 "(./run does this when run as root)")
        self.workdir, self.backends, self.host, self.port = workdir, backends, host, port
        self.inter_ms = inter_ms
        self.config = workdir / "haproxy.cfg"
        self.socket = workdir / "haproxy.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> int:
        servers = "\n".join(f"    server {name} {address} check" for name, address in self.backends.items())
        self.config.write_text(CONFIG.format(socket=self.socket, host=self.host, port=self.port,
                                             inter_ms=self.inter_ms, servers=servers))
        log = open(self.workdir / "haproxy.log", "ab")
        self.process = subprocess.Popen([self.binary, "-db", "-f", str(self.config)],
                                        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"HAProxy exited ({self.process.returncode}): "
                                   f"{(self.workdir / 'haproxy.log').read_text()[-500:]}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self.process.pid
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"HAProxy did not listen on {self.host}:{self.port} within {timeout}s")

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
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill_tree([process.pid])
                process.wait(5)
