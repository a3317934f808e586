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
with the dir on ``down()``.

moto keeps its state in memory: a restart loses every bucket and object; ``reset()``
empties it without a restart.
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from harness.lab import proc, reaper
from harness.lab.tlsca import LabCA
from harness.net import free_port
from harness.wait import poll

LOOPBACK = "127.0.0.1"

# `python -m moto.server` cannot carry our tag (its argparse refuses unknown arguments), so
# the tag rides as a spare argv item that this launcher drops before calling moto's main.
_LAUNCH = "import sys; from moto.server import main; main(sys.argv[2:])"
# With TLS, werkzeug's server is patched first (see serve_tls).
_LAUNCH_TLS = "import sys; from harness.lab.moto import serve_tls; serve_tls(sys.argv[2:])"
_CLOSE_NOTIFY_TIMEOUT = 2.0


def serve_tls(argv: list[str]) -> None:
    """moto.server.main(argv), its server ending each TLS connection with a close_notify alert.

    werkzeug answers every request with "Connection: close" and then closes the socket
    without a TLS close_notify; pgBackRest (OpenSSL 3) reads on to the end of the connection,
    takes the bare EOF for a truncation attack ("unexpected eof while reading"), and retries
    until it gives up. unwrap() sends the alert (and waits a moment for the client's)."""
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
    moto.server.main(argv)


class MotoStartError(RuntimeError):
    """moto did not start or answer in time; the message holds its log tail."""


class MotoServer:
    """A moto server on 127.0.0.1; use as a context manager.

    with MotoServer() as moto:
        boto3.client("s3", endpoint_url=moto.endpoint_url, ...)
    """

    def __init__(
        self,
        port: int | None = None,
        state_dir: str | os.PathLike | None = None,
        base_dir: str | os.PathLike | None = None,
        start_timeout: float = 30.0,
        python: str | None = None,
        tls: bool = False,
    ) -> None:
        self.host = LOOPBACK
        self.port = port
        self.state_dir = state_dir
        self.base_dir = Path(base_dir or tempfile.gettempdir())
        self.start_timeout = start_timeout
        self.python = python or sys.executable
        self.tls = tls
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
                    _LAUNCH_TLS if self.tls else _LAUNCH,
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
