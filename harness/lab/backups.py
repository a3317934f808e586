"""The embedded lab's backup service: harness.backup's jobs run on the Control Plane's clock.

A thread looks every TICK_S at the Control Plane's clock (``cp_now()`` on the primary, through
the client endpoint) and, when the schedule says a job is due (an hourly snapshot, the daily
cross-region export, the daily inventory, retention), runs ``BackupJobs.run_due``; so moving
the clock an hour forward makes it take the next hourly snapshot within a tick. A job that fails
(the database is down, the store does not answer) is logged to ``<lab root>/backup.log`` with
its cause and tried again on the next tick; nothing is ever raised into the lab.

``halt()`` / ``resume()`` stop and restart the jobs (the fault ``backup_halt``: a backup service
that stopped taking snapshots); ``caught_up()`` says no job is due. The service remembers the
Control Plane clock's offset from this machine's clock, last read, so that a database restored
from a snapshot (whose ``cp_clock`` row holds the offset of snapshot time) gets its clock back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..backup import BackupJobs, BackupStore, KeyVault, cp_clock_of, due

TICK_S = 0.25


class BackupService:
    def __init__(
        self, s3, dsn: Callable[[], str], pg_bin: Path, workdir: Path, evidence_buckets: tuple[str, ...], log_path: Path
    ) -> None:
        self.store = BackupStore(s3)
        self.vault = KeyVault(s3, self.store.vault_bucket)
        self.dsn, self.pg_bin, self.workdir = dsn, Path(pg_bin), workdir
        self.evidence_buckets = evidence_buckets
        self.log_path = log_path
        self.clock_offset_s: float | None = None  # cp_now() - time.time(), last read
        self.last_error: str | None = None
        self.runs = 0
        self._halted = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one run of the jobs at a time
        self._thread: threading.Thread | None = None
        self._last: tuple[float | None, float | None, float | None] | None = None

    def start(self) -> None:
        """Create the buckets and the key (once), take the first snapshot, export and inventory
        now (the lab starts with a fresh backup), then keep to the schedule in a thread."""
        self.store.ensure()
        self.vault.ensure_key()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.run_once(raise_errors=True)
        self._thread = threading.Thread(target=self._loop, name="backup-service", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    # -- the fault backup_halt -----------------------------------------------------------------
    def halt(self) -> None:
        """Stop taking snapshots (a run in progress finishes first)."""
        self._halted.set()
        with self._lock:
            pass

    def resume(self) -> None:
        self._halted.clear()

    @property
    def halted(self) -> bool:
        return self._halted.is_set()

    # -- the schedule --------------------------------------------------------------------------
    def jobs(self) -> BackupJobs:
        return BackupJobs(
            self.store,
            self.vault,
            self.dsn(),
            self.pg_bin,
            evidence_buckets=self.evidence_buckets,
            workdir=self.workdir,
        )

    def cp_now(self) -> float:
        now = cp_clock_of(self.dsn())
        self.clock_offset_s = now - time.time()
        return now

    def caught_up(self) -> bool:
        """No run in progress and no job due on the Control Plane's clock now (read from the store,
        not remembered): retention runs last in a run, after the snapshot a caller may be watching."""
        with self._lock:
            return not due(self.cp_now(), *self.jobs().last_times())

    def run_once(self, raise_errors: bool = False) -> list[str]:
        """Run what is due now; the jobs run (empty when nothing was due or the service is halted)."""
        with self._lock:
            if self._halted.is_set():
                return []
            try:
                now = self.cp_now()
                if self._last is not None and not due(now, *self._last):
                    return []
                jobs = self.jobs()
                ran = jobs.run_due(now)
                self._last = jobs.last_times()
                self.runs += 1 if ran else 0
                self.last_error = None
                return ran
            except Exception as exc:  # noqa: BLE001 - logged and retried on the next tick
                self._last = None
                cause = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
                if cause != self.last_error:
                    with open(self.log_path, "a") as log:
                        log.write(f"{time.strftime('%H:%M:%S')} backup jobs failed: {cause}\n")
                self.last_error = cause
                if raise_errors:
                    raise
                return []

    def forget(self) -> None:
        """Read the store again on the next tick (after the drill changed it behind the service)."""
        with self._lock:
            self._last = None

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            self.run_once()
