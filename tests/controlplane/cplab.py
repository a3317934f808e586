"""Control Plane processes for tests: migrate and serve as command lines, reached over HTTP.

The tests reach the Control Plane only as the lab will: command lines, HTTP, SQL and S3.
Readiness is polled with deadlines, never slept for.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import requests

from controlplane.control_auth import CONTROL_TOKEN_ENV
from harness.lab import proc, reaper
from harness.lab.moto import MotoServer
from harness.lab.postgres import PgCluster, free_port
from harness.wait import poll as poll_until
from tests.support import wait_for

REPO = Path(__file__).resolve().parents[2]
BUCKET = "drill-evidence"
REPLICA_BUCKET = "drill-evidence-replica"
START_DEADLINE = 20.0
T = TypeVar("T")


def poll(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call condition until it returns something truthy; AssertionError naming `what` at the deadline."""
    return wait_for(condition, timeout, interval, what)


def health(instance: Instance) -> tuple[int, dict]:
    """(status code, body) of the instance's GET /health."""
    response = requests.get(instance.url + "/health", timeout=15)
    return response.status_code, response.json()


def app_conninfo(port: int) -> str:
    """The conninfo the Control Plane gets: no password (that is in PGPASSWORD)."""
    return f"host=127.0.0.1 port={port} dbname=controlplane user=controlplane"


CONTROL_TOKEN = "test-control-" + secrets.token_hex(8)
CONTROL = {"Authorization": f"Bearer {CONTROL_TOKEN}"}  # what a call of a control endpoint carries


def cp_env(password: str) -> dict[str, str]:
    """Environment of a Control Plane process: secrets here, never on the command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
    env.update(
        PGPASSWORD=password,
        AWS_ACCESS_KEY_ID="drill-access-key",
        AWS_SECRET_ACCESS_KEY="drill-secret-" + secrets.token_hex(8),
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
    )
    env[CONTROL_TOKEN_ENV] = CONTROL_TOKEN  # clock control (serve --allow-clock-control) needs it
    return env


@dataclass
class Instance:
    """One `python -m controlplane serve` process."""

    name: str
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class ControlPlaneLab:
    """PostgreSQL + moto + migrated schema + running instances, and how to start more."""

    pg: PgCluster
    moto: MotoServer
    workdir: Path
    env: dict[str, str]
    registration: reaper.Registration
    instances: dict[str, Instance] = field(default_factory=dict)

    @property
    def conninfo(self) -> str:
        return app_conninfo(self.pg.primary.port)

    @property
    def siem(self) -> Path:
        return self.workdir / "siem.jsonl"

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "controlplane", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def migrate(self, conninfo: str | None = None, s3: str | None = None) -> subprocess.CompletedProcess:
        return self.cli(
            "migrate",
            "--database",
            conninfo or self.conninfo,
            "--s3-endpoint",
            s3 or self.moto.endpoint_url,
            "--evidence-bucket",
            BUCKET,
            "--evidence-replica-bucket",
            REPLICA_BUCKET,
        )

    def serve(
        self, name: str, s3: str | None = None, conninfo: str | None = None, extra: tuple[str, ...] = ()
    ) -> Instance:
        """Start an instance and wait until /health/live answers (fails early if it exits);
        extra: more `serve` arguments (e.g. the replica bucket, the retry policy)."""
        port = free_port()
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "controlplane",
                    "serve",
                    "--instance",
                    name,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--database",
                    conninfo or self.conninfo,
                    "--s3-endpoint",
                    s3 or self.moto.endpoint_url,
                    "--evidence-bucket",
                    BUCKET,
                    "--siem",
                    str(self.siem),
                    "--db-timeout",
                    "2.0",
                    *extra,
                ],
                env=self.env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.registration.add_pid(process.pid)
        instance = Instance(name, port, process, log)
        self.instances[name] = instance

        def live() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"instance {name} exited ({process.returncode}):\n{instance.log_text()[-2000:]}")
            try:
                return requests.get(instance.url + "/health/live", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        if not poll_until(live, timeout=START_DEADLINE, interval=0.05).ok:
            raise TimeoutError(f"instance {name} not live within {START_DEADLINE} s:\n{instance.log_text()[-2000:]}")
        return instance

    def kill(self, name: str) -> None:
        """SIGKILL the instance (as the lab's fault does) and wait until it is gone."""
        instance = self.instances.pop(name)
        survivors = proc.kill_tree([instance.process.pid], timeout=10)
        assert not survivors, f"instance {name}: pids {survivors} survived SIGKILL"
        instance.process.wait(timeout=5)
        self.registration.remove_pid(instance.process.pid)

    def wait_tier(self, instance: Instance, serving: int, timeout: float = START_DEADLINE) -> dict:
        """Poll the instance's /health until its api_tier part counts `serving` live instances
        (in its detail); returns that /health body."""

        def seen():
            _, body = health(instance)
            detail = body["components"]["api_tier"]["detail"]
            return body if detail.startswith((f"{serving} of ", f"{serving} instance")) else None

        return poll(seen, timeout, f"{instance.name}: api_tier with {serving} instances serving")

    def stop(self, name: str) -> None:
        """SIGTERM the instance, SIGKILL it (and any child) if it does not exit."""
        instance = self.instances.pop(name)
        if instance.process.poll() is None:
            instance.process.terminate()
            try:
                instance.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill_tree([instance.process.pid])
                instance.process.wait(timeout=5)
        self.registration.remove_pid(instance.process.pid)


@contextlib.contextmanager
def control_plane_lab(
    pg: PgCluster, workdir_factory, names: tuple[str, ...] = ("az1", "az2"), extra: tuple[str, ...] = ()
) -> Iterator[ControlPlaneLab]:
    """moto, the migrated schema on pg, and the instances `names` (every one heartbeating: the
    first one's /health counts them all) until the block ends; every process is stopped."""
    tag = "drillcp-" + secrets.token_hex(4)  # in every instance's command line (the SIEM path)
    workdir = workdir_factory.mktemp(tag)
    with MotoServer() as moto:
        registration = reaper.Registration(tag, "controlplane", tag=tag)
        lab = ControlPlaneLab(pg, moto, workdir, cp_env(pg.password), registration)
        try:
            result = lab.migrate()
            assert result.returncode == 0, result.stderr
            for name in names:
                lab.serve(name, extra=extra)
            lab.wait_tier(lab.instances[names[0]], len(names))
            yield lab
        finally:
            for name in list(lab.instances):
                lab.stop(name)
            registration.close()
