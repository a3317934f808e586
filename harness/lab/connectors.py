"""The embedded lab's connector tier: SQS queues, a platform API stand-in per platform, and
one connector worker per platform reaching its platform through a Toxiproxy proxy.

    Control Plane --publish--> SQS <lab>-<platform> (moto) --> connector <platform>
        connector --[proxy platform-<platform>]--> platform mock <platform>
        connector --report--> Control Plane API (the load balancer): platform health

Every process is a real subprocess on 127.0.0.1, registered with the reaper (the lab id is
in each command line), and stopped by ``stop()``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import requests

from . import proc, reaper
from .base import LabStartError
from ..net import LOOPBACK, free_port

PLATFORMS = ("intune", "jamf", "sccm", "landscape", "ansible")   # controlplane.platforms, not imported
# Short, so that a drill's backoff, dead-lettering and recovery run in seconds:
# waits 0.5, 1, 2 s (or Retry-After when larger), dead letter at the 4th failed attempt.
CONNECTOR_ARGS = ("--base-interval", "0.5", "--max-attempts", "4", "--max-backoff", "8",
                  "--wait-time", "1", "--probe-interval", "1", "--request-timeout", "3")
MAX_RECEIVE_COUNT = 6   # the queue's own redrive: a safety net behind the worker's max attempts
START_TIMEOUT = 30.0


class ConnectorTier:
    def __init__(self, root: Path, lab_id: str, registration: reaper.Registration,
                 proxy: Callable[[str, str], str], env: dict[str, str], sqs_endpoint: str) -> None:
        self.root, self.lab_id, self.registration = root, lab_id, registration
        self.proxy, self.env, self.sqs_endpoint = proxy, env, sqs_endpoint
        self.queues: dict[str, dict[str, str]] = {}
        self.mocks: dict[str, subprocess.Popen] = {}
        self.mock_ports: dict[str, int] = {}
        self.workers: dict[str, subprocess.Popen] = {}

    @property
    def prefix(self) -> str:
        return self.lab_id

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")
        process = subprocess.Popen([sys.executable, "-m", "controlplane", *args], env=self.env,
                                   stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.registration.add_pid(process.pid)
        return process

    def _tail(self, name: str) -> str:
        try:
            return (self.root / f"{name}.log").read_text()[-600:]
        except OSError:
            return ""

    # -- lifecycle -------------------------------------------------------------------------
    def start_queues_and_mocks(self) -> None:
        """Queues (with redrive) and the platform stand-ins; these need only moto."""
        done = subprocess.run(
            [sys.executable, "-m", "controlplane", "queues", "--sqs-endpoint", self.sqs_endpoint,
             "--prefix", self.prefix, "--max-receive-count", str(MAX_RECEIVE_COUNT)],
            env=self.env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise LabStartError(f"connector queues not created: {done.stderr.strip()[-400:]}")
        self.queues = json.loads(done.stdout)
        for platform in PLATFORMS:
            self.start_platform(platform, free_port(), wait=False)
        deadline = time.monotonic() + START_TIMEOUT
        for platform in PLATFORMS:
            self._wait_platform(platform, deadline)

    def start_workers(self, report_url: str) -> None:
        """One connector worker per platform, reporting to the Control Plane at report_url."""
        for platform in PLATFORMS:
            listen = self.proxy(f"platform-{platform}", f"{LOOPBACK}:{self.mock_ports[platform]}")
            q = self.queues[platform]
            self.workers[platform] = self._spawn(f"connector-{platform}", [
                "connector", "--platform", platform, "--queue-url", q["queue_url"], "--dlq-url", q["dlq_url"],
                "--sqs-endpoint", self.sqs_endpoint, "--platform-url", f"http://{listen}",
                "--report-url", report_url, "--metrics-file", str(self.root / f"connector-{platform}.json"),
                *CONNECTOR_ARGS])
        deadline = time.monotonic() + START_TIMEOUT
        for platform, worker in self.workers.items():   # ready: its metrics file exists
            while not (self.root / f"connector-{platform}.json").exists():
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise LabStartError(f"connector {platform} did not start:\n{self._tail(f'connector-{platform}')}")
                time.sleep(0.05)

    def stop(self) -> None:
        for process in [*self.workers.values(), *self.mocks.values()]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers.values(), *self.mocks.values()]:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill_tree([process.pid])
        self.workers.clear()
        self.mocks.clear()

    # -- platforms -------------------------------------------------------------------------
    def start_platform(self, platform: str, port: int, wait: bool = True) -> None:
        self.mocks[platform] = self._spawn(f"platform-{platform}", [
            "platform-mock", "--platform", platform, "--host", LOOPBACK, "--port", str(port), "--tag", self.lab_id])
        self.mock_ports[platform] = port
        if wait:
            self._wait_platform(platform, time.monotonic() + START_TIMEOUT)

    def _wait_platform(self, platform: str, deadline: float) -> None:
        while True:
            try:
                if requests.get(f"{self.control_url(platform)}/health", timeout=0.5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.mocks[platform].poll() is not None or time.monotonic() > deadline:
                raise LabStartError(f"platform stand-in {platform} did not start:\n{self._tail(f'platform-{platform}')}")
            time.sleep(0.05)

    def control_url(self, platform: str) -> str:
        """The stand-in's own address (its /_control and /applied), not through the proxy."""
        return f"http://{LOOPBACK}:{self.mock_ports[platform]}"

    def kill_platform(self, platform: str) -> None:
        """SIGKILL the platform's server (a site server going down)."""
        self.registration.kill(self.mocks[platform])

    def restart_platform(self, platform: str) -> None:
        """Start the platform's server again on its port (its record of applied intents is new)."""
        if self.mocks[platform].poll() is None:
            return
        self.start_platform(platform, self.mock_ports[platform])

    def processes(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for kind, group in (("platform", self.mocks), ("connector", self.workers)):
            for name, process in group.items():
                out[f"{kind}:{name}"] = process.pid if process.poll() is None else None
        return out

    def endpoints(self) -> dict[str, str]:
        return {p: self.control_url(p) for p in self.mock_ports}
