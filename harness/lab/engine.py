"""Finds a container engine for the container lab: Docker, or Podman's Docker-compatible socket.

1. DOCKER_HOST set and answering; 2. /var/run/docker.sock answering; 3. `podman` on PATH:
start `podman system service` on a private socket (registered, so a killed run's service is
reaped). None of these: ContainerEngineUnavailable says why (tests skip with that reason).
testcontainers is then pointed at the engine: no Ryuk (its image cannot be pulled here), and
the docker-host connection mode (this machine has /.dockerenv, which misleads it otherwise).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..wait import poll
from . import proc, reaper


class ContainerEngineUnavailable(RuntimeError):
    pass


def _ping(docker_host: str, timeout: float = 3.0) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=docker_host, timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@dataclass
class Engine:
    docker_host: str
    kind: str  # "docker-host", "docker" or "podman"
    process: subprocess.Popen | None = None
    registration: reaper.Registration | None = None
    files: tuple[Path, ...] = ()
    _saved_docker_host: str | None = None

    def configure_testcontainers(self) -> None:
        from testcontainers.core.config import testcontainers_config as config

        self._saved_docker_host = os.environ.get("DOCKER_HOST")
        os.environ["DOCKER_HOST"] = self.docker_host
        config.ryuk_disabled = True
        try:
            from testcontainers.core.config import ConnectionMode

            config.connection_mode_override = ConnectionMode.docker_host
        except ImportError:
            os.environ["TESTCONTAINERS_CONNECTION_MODE"] = "docker_host"

    def stop(self) -> None:
        """Stop the engine service this process started (if any) and restore DOCKER_HOST."""
        if os.environ.get("DOCKER_HOST") == self.docker_host and self.process is not None:
            if self._saved_docker_host is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = self._saved_docker_host
        process, self.process = self.process, None
        proc.stop_process(process, timeout=10)
        for path in self.files:
            path.unlink(missing_ok=True)
        if self.registration is not None:
            self.registration.close()
            self.registration = None


def find_engine(start_podman: bool = True) -> Engine:
    host = os.environ.get("DOCKER_HOST")
    if host:
        if _ping(host):
            return Engine(host, "docker-host")
        raise ContainerEngineUnavailable(f"DOCKER_HOST={host} does not answer")
    if Path("/var/run/docker.sock").exists() and _ping("unix:///var/run/docker.sock"):
        return Engine("unix:///var/run/docker.sock", "docker")
    podman = shutil.which("podman")
    if podman is None or not start_podman:
        raise ContainerEngineUnavailable(
            "no container engine: DOCKER_HOST unset, no Docker socket answers, "
            "and podman is not installed (./run installs it on Debian)"
        )
    return _start_podman(podman)


def _start_podman(podman: str, timeout: float = 20.0) -> Engine:
    lab_id = f"drillpodman-{os.getpid()}-{int(time.time())}"
    directory = reaper.state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    socket_path = directory / f"{lab_id}.sock"
    registration = reaper.Registration(lab_id, "podman-service", tag=lab_id)
    log = open(directory / f"{lab_id}.log", "ab")
    process = subprocess.Popen(
        [podman, "system", "service", "--time=0", f"unix://{socket_path}"],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    registration.add_pid(process.pid)
    engine = Engine(
        f"unix://{socket_path}", "podman", process, registration, (socket_path, directory / f"{lab_id}.log")
    )

    def state() -> str | None:
        if socket_path.exists() and _ping(engine.docker_host, timeout=1.0):
            return "up"
        return "exited" if process.poll() is not None else None

    if poll(state, until=lambda s: s is not None, timeout=timeout).value == "up":
        return engine
    tail = (directory / f"{lab_id}.log").read_text(errors="replace")[-400:]
    engine.stop()
    raise ContainerEngineUnavailable(f"podman system service did not answer: {tail}")
