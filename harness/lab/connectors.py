"""The embedded lab's connector tier: SQS queues, a platform API stand-in per platform, and
one connector worker per platform reaching its platform through a Toxiproxy proxy, kept up by
an auto-scaling group.

    Control Plane --publish--> SQS <lab>-<platform> (moto) --> connector <platform>
        connector --[proxy platform-<platform>]--> platform mock <platform>
        connector --report--> Control Plane API (the load balancer): platform health

Every process is a real subprocess on 127.0.0.1, registered with the reaper (the lab id is
in each command line), and stopped by ``stop()``. Each stand-in appends every request it saw,
and what it answered, to ``<lab root>/platform-<name>.requests.jsonl`` (kept across its
restarts): ``platform_requests()`` reads it, the evidence drills judge from.

The auto-scaling group (spec 1.4, "stateless connectors with auto-scaling groups") is a thread
that replaces a worker that exited with a new one on the same queue, and appends each
replacement to ``<lab root>/connector-asg.jsonl`` ({"at": wall clock, "platform", "old_pid",
"new_pid", "exit"}): the connector failover a drill observes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import requests

from ..errors import LabStartError
from ..net import LOOPBACK, free_port
from ..wait import until_up
from . import proc, reaper

PLATFORMS = ("intune", "jamf", "sccm", "landscape", "ansible")  # controlplane.platforms, not imported
# Short, so that a drill's backoff, dead-lettering and recovery run in seconds:
# waits 0.5, 1, 2 s (or Retry-After when larger), dead letter at the 4th failed attempt. A plan's
# targets.connector_backoff states it (harness.plan checks a lab plan's against it).
LAB_CONNECTOR_BACKOFF = {"base_seconds": 0.5, "factor": 2.0, "max_attempts": 4}
CONNECTOR_ARGS = (
    "--base-interval",
    f"{LAB_CONNECTOR_BACKOFF['base_seconds']:g}",
    "--max-attempts",
    str(LAB_CONNECTOR_BACKOFF["max_attempts"]),
    "--max-backoff",
    "8",
    "--wait-time",
    "1",
    "--probe-interval",
    "1",
    "--request-timeout",
    "3",
)
PORT_ATTEMPTS = 3
ASG_INTERVAL = 0.25  # how often the auto-scaling group looks at its workers (its health check)
MAX_RECEIVE_COUNT = 6  # the queue's own redrive: a safety net behind the worker's max attempts
START_TIMEOUT = 30.0


def read_request_log(path: Path) -> list[dict]:
    """The lines of a stand-in's request log, in order. Each line is written with its newline in
    one write, so a last line without one is torn (being written now, or cut by a kill) and is
    skipped; a bad line anywhere else raises ValueError naming it (the evidence is damaged)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    lines.pop()  # b"" after the last newline, or the torn last line
    out = []
    for number, raw in enumerate(lines, 1):
        try:
            entry = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"{path}: line {number} is not a request record: {exc}") from None
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: line {number} is not a request record (not a JSON object)")
        out.append(entry)
    return out


DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
PEEK_ROUNDS = 10


def queue_depth(sqs, queue_url: str) -> int:
    """Messages in a queue as SQS counts them: visible + in flight (not visible) + delayed."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(DEPTH_ATTRIBUTES))["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in DEPTH_ATTRIBUTES)


def peek_messages(sqs, queue_url: str, rounds: int = PEEK_ROUNDS) -> list[dict]:
    """The JSON bodies of the messages now in a queue, read without consuming them: received with
    VisibilityTimeout=0 (they stay visible to everyone else) and never deleted, round after round
    until a round brings no message not seen yet (at most `rounds`). A body that is not a JSON
    object (a poison message) comes back as {"unparsed_body": <text>}, not dropped. Only what SQS
    hands out is seen: moto hands out the same first 10 visible messages every round, so there a
    queue holding more than 10 is read incompletely (a drill's dead-letter queue holds a few)."""
    seen: dict[str, dict] = {}
    for _ in range(rounds):
        reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0)
        new = [m for m in reply.get("Messages", []) if m["MessageId"] not in seen]
        if not new:
            break
        for message in new:
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = None
            seen[message["MessageId"]] = body if isinstance(body, dict) else {"unparsed_body": message["Body"]}
    return list(seen.values())


class Launcher(Protocol):
    """How a lab runs a part of its connector tier: ProcessLauncher (a local process) or the
    container lab's ContainerLauncher (a container on the lab network)."""

    listen_host: str

    def spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, listen: int | None = None
    ) -> proc.ProcessHandle: ...
    def run_once(self, args: list[str]) -> str: ...
    def port(self) -> int: ...
    def reach(self, name: str, port: int) -> str: ...
    def control(self, name: str, port: int) -> str: ...
    def kill(self, process: Any) -> None: ...
    def tail(self, name: str, lines: int = 8) -> str: ...
    def stop(self, processes: list[Any]) -> None: ...


def _exited(process: Any) -> bool:
    return process.poll() is not None


class ProcessLauncher:
    """How the embedded lab runs a part of its connector tier: a local process on 127.0.0.1,
    registered with the reaper, logging to <root>/<name>.log. The container lab has its own
    (harness.lab.containers.ContainerLauncher) with the same methods."""

    listen_host = LOOPBACK

    def __init__(self, root: Path, registration: reaper.Registration, env: dict[str, str]) -> None:
        self.root, self.registration, self.env = root, registration, env

    def spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, listen: int | None = None
    ) -> subprocess.Popen:
        """`python -m controlplane ARGS` as the part `name` (listening on `listen`, if it does)."""
        log = open(self.root / f"{name}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "controlplane", *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.registration.add_pid(process.pid)
        return process

    def run_once(self, args: list[str]) -> str:
        """`python -m controlplane ARGS` to its end; its output (LabStartError if it failed)."""
        done = subprocess.run(
            [sys.executable, "-m", "controlplane", *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise LabStartError(f"controlplane {args[0]} failed: {done.stderr.strip()[-400:]}")
        return done.stdout

    def port(self) -> int:
        return free_port()

    def reach(self, name: str, port: int) -> str:
        """The address the lab's other parts reach the part at."""
        return f"{LOOPBACK}:{port}"

    def control(self, name: str, port: int) -> str:
        """The address the harness reaches the part at."""
        return f"{LOOPBACK}:{port}"

    def kill(self, process: subprocess.Popen) -> None:
        self.registration.kill(process)

    def tail(self, name: str, lines: int = 8) -> str:
        """The last `lines` lines of a part's log."""
        try:
            return "".join((self.root / f"{name}.log").read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return ""

    def stop(self, processes: list[subprocess.Popen]) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill_tree([process.pid])


class ConnectorTier:
    def __init__(
        self,
        root: Path,
        lab_id: str,
        launcher: Launcher,
        proxy: Callable[[str, str], str],
        sqs_endpoint: str,
        control_env: dict[str, str] | None = None,
    ) -> None:
        """`proxy(name, upstream)` makes a Toxiproxy proxy and answers the address the workers
        reach it at; `sqs_endpoint` is SQS as the parts reach it."""
        self.root, self.lab_id, self.launcher = root, lab_id, launcher
        self.control_env = dict(control_env or {})  # the stand-ins' control token (not the workers')
        self.proxy, self.sqs_endpoint = proxy, sqs_endpoint
        self.queues: dict[str, dict[str, str]] = {}
        self.mocks: dict[str, Any] = {}
        self.mock_ports: dict[str, int] = {}
        self.workers: dict[str, Any] = {}
        self.worker_args: dict[str, list[str]] = {}
        self._asg_stop = threading.Event()
        self._asg_lock = threading.Lock()
        self._asg: threading.Thread | None = None

    @property
    def prefix(self) -> str:
        return self.lab_id

    # -- lifecycle -------------------------------------------------------------------------
    def start_queues_and_mocks(self) -> None:
        """Queues (with redrive) and the platform stand-ins; these need only moto."""
        self.queues = json.loads(
            self.launcher.run_once(
                [
                    "queues",
                    "--sqs-endpoint",
                    self.sqs_endpoint,
                    "--prefix",
                    self.prefix,
                    "--max-receive-count",
                    str(MAX_RECEIVE_COUNT),
                ]
            )
        )
        for platform in PLATFORMS:
            self.start_platform(platform, self.launcher.port(), wait=False)
        deadline = time.monotonic() + START_TIMEOUT
        for platform in PLATFORMS:
            for attempt in range(PORT_ATTEMPTS):
                try:
                    self._wait_platform(platform, deadline)
                    break
                except LabStartError:
                    # the free port was taken before the stand-in bound it (the lab's other parts
                    # start meanwhile): another port; any other cause is raised
                    taken = "address already in use" in self.launcher.tail(f"platform-{platform}")
                    if attempt + 1 == PORT_ATTEMPTS or not taken:
                        raise
                    self.start_platform(platform, self.launcher.port(), wait=False)

    def start_workers(self, report_url: str) -> None:
        """One connector worker per platform, reporting to the Control Plane at report_url."""
        for platform in PLATFORMS:
            listen = self.proxy(
                f"platform-{platform}", self.launcher.reach(f"platform-{platform}", self.mock_ports[platform])
            )
            q = self.queues[platform]
            self.worker_args[platform] = [
                "connector",
                "--platform",
                platform,
                "--queue-url",
                q["queue_url"],
                "--dlq-url",
                q["dlq_url"],
                "--sqs-endpoint",
                self.sqs_endpoint,
                "--platform-url",
                f"http://{listen}",
                "--report-url",
                report_url,
                "--metrics-file",
                str(self.root / f"connector-{platform}.json"),
                *CONNECTOR_ARGS,
            ]
            self.workers[platform] = self.launcher.spawn(f"connector-{platform}", self.worker_args[platform])
        deadline = time.monotonic() + START_TIMEOUT
        for platform, worker in self.workers.items():  # ready: its metrics file exists
            if (
                until_up(
                    (self.root / f"connector-{platform}.json").exists,
                    partial(_exited, worker),
                    max(0.0, deadline - time.monotonic()),
                )
                != "up"
            ):
                tail = self.launcher.tail(f"connector-{platform}")
                raise LabStartError(f"connector {platform} did not start:\n{tail}")
        self._asg = threading.Thread(target=self._scale, name=f"{self.lab_id}-connector-asg", daemon=True)
        self._asg.start()

    # -- the auto-scaling group --------------------------------------------------------------
    def asg_log(self) -> Path:
        return self.root / "connector-asg.jsonl"

    def _scale(self) -> None:
        while not self._asg_stop.wait(ASG_INTERVAL):
            for platform in list(self.workers):
                try:
                    self.replace_worker(platform)
                except Exception as exc:  # the next round tries again; say why in the tier's log
                    with open(self.root / "connector-asg.log", "a") as log:
                        log.write(f"{time.time():.3f} {platform}: replacement failed: {exc}\n")

    def replace_worker(self, platform: str) -> int | None:
        """Start a new worker on the platform's queue if its worker exited; the new pid, or None
        when the worker is running (or the tier is stopping)."""
        with self._asg_lock:
            old = self.workers.get(platform)
            if self._asg_stop.is_set() or old is None or old.poll() is None:
                return None
            new = self.launcher.spawn(f"connector-{platform}", self.worker_args[platform])
            self.workers[platform] = new
            with open(self.asg_log(), "a") as log:
                log.write(
                    json.dumps(
                        {
                            "at": time.time(),
                            "platform": platform,
                            "old_pid": old.pid,
                            "new_pid": new.pid,
                            "exit": old.returncode,
                        }
                    )
                    + "\n"
                )
            return new.pid

    def replacements(self) -> list[dict]:
        """Every worker the auto-scaling group replaced, in order, from its log."""
        return read_request_log(self.asg_log())

    def kill_worker(self, platform: str) -> int:
        """SIGKILL the platform's connector worker (a lost instance of its pool); its pid."""
        if platform not in self.workers:
            raise KeyError(f"no connector worker for {platform!r}; known: {', '.join(self.workers)}")
        worker = self.workers[platform]
        self.launcher.kill(worker)
        return worker.pid

    def worker_pid(self, platform: str) -> int | None:
        worker = self.workers.get(platform)
        return worker.pid if worker is not None and worker.poll() is None else None

    def stop(self) -> None:
        self._asg_stop.set()
        if self._asg is not None:
            self._asg.join(5)
        self.launcher.stop([*self.workers.values(), *self.mocks.values()])
        self.workers.clear()
        self.mocks.clear()

    # -- platforms -------------------------------------------------------------------------
    def request_log(self, platform: str) -> Path:
        """The stand-in's request log: one JSON line per POST /apply, kept across its restarts."""
        return self.root / f"platform-{platform}.requests.jsonl"

    def platform_requests(self, platform: str) -> list[dict]:
        """Every /apply request the platform's stand-in saw and what it answered, in order, from
        its request log (a torn last line, one being written or cut by a kill, is skipped)."""
        if platform not in PLATFORMS:
            raise KeyError(f"no platform stand-in named {platform!r}; known: {', '.join(PLATFORMS)}")
        return read_request_log(self.request_log(platform))

    def _platform_args(self, platform: str, port: int) -> list[str]:
        return [
            "platform-mock",
            "--platform",
            platform,
            "--host",
            self.launcher.listen_host,
            "--port",
            str(port),
            "--tag",
            self.lab_id,
            "--request-log",
            str(self.request_log(platform)),
        ]

    def start_platform(self, platform: str, port: int, wait: bool = True) -> None:
        self.mocks[platform] = self.launcher.spawn(
            f"platform-{platform}", self._platform_args(platform, port), env=self.control_env, listen=port
        )
        self.mock_ports[platform] = port
        if wait:
            self._wait_platform(platform, time.monotonic() + START_TIMEOUT)

    def _wait_platform(self, platform: str, deadline: float) -> None:
        def answers() -> bool:
            return requests.get(f"{self.control_url(platform)}/health", timeout=0.5).status_code == 200

        state = until_up(
            answers, lambda: self.mocks[platform].poll() is not None, max(0.0, deadline - time.monotonic())
        )
        if state != "up":
            why = (
                f"exited {self.mocks[platform].poll()}"
                if state == "exited"
                else f"{self.control_url(platform)}/health did not answer"
            )
            raise LabStartError(
                f"platform stand-in {platform} did not start ({why}):\n{self.launcher.tail(f'platform-{platform}')}"
            )

    def control_url(self, platform: str) -> str:
        """The stand-in's own address (its /_control and /applied), not through the proxy."""
        return f"http://{self.launcher.control(f'platform-{platform}', self.mock_ports[platform])}"

    def kill_platform(self, platform: str) -> None:
        """SIGKILL the platform's server (a site server going down)."""
        self.launcher.kill(self.mocks[platform])

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
