"""Leftover registry: each lab records its owner, processes and dirs so a later run can clean up.

Contract: a lab writes ``<state_dir>/<lab_id>.json`` before it starts anything and
keeps it current while it runs; ``down()`` removes it. A file whose owner process is
gone belongs to a harness that was killed mid-drill: ``reap_stale()`` SIGKILLs what
that lab started (and their children) and removes its dirs. It never touches a lab
whose owner is alive, and never kills a pid that no longer carries the lab's tag
(pids are reused).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from harness.lab import proc

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = "/tmp/drill-harness-state"
RECORD_SCHEMA = "drill-lab-record/1"


def state_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The registry directory: explicit argument, else env DRILL_STATE_DIR, else the default."""
    return Path(explicit or os.environ.get("DRILL_STATE_DIR") or DEFAULT_STATE_DIR)


@dataclass
class LabRecord:
    """What one lab started. ``tag`` is a unique string found in the command line of
    every process of the lab, so a pid recorded here is only killed if it still carries it."""

    lab_id: str
    kind: str
    owner_pid: int
    owner_start_time: int | None
    tag: str
    pids: list[int] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    # Marks the file as a record of this registry: other JSON files in the state dir
    # (e.g. a lab manifest for `drill lab status`) are never reaped.
    schema: str = RECORD_SCHEMA


class Registration:
    """A live lab's entry in the registry; every change is written at once (atomically)."""

    def __init__(self, lab_id: str, kind: str, tag: str | None = None,
                 directory: str | os.PathLike | None = None) -> None:
        self.dir = state_dir(directory)
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True)
            # Shared like /tmp: harness runs of other users register here too.
            try:
                self.dir.chmod(0o1777)
            except OSError:
                pass
        me = os.getpid()
        self.record = LabRecord(lab_id=lab_id, kind=kind, owner_pid=me,
                                owner_start_time=proc.start_time(me), tag=tag or lab_id)
        self.path = self.dir / f"{lab_id}.json"
        self._lock = threading.RLock()
        self._save()

    def add_pid(self, pid: int) -> None:
        if pid not in self.record.pids:
            self.record.pids.append(pid)
            self._save()

    def remove_pid(self, pid: int) -> None:
        if pid in self.record.pids:
            self.record.pids.remove(pid)
            self._save()

    def kill(self, process) -> None:
        """SIGKILL a process this lab started (a fault), reap it, and forget its pid."""
        process.kill()
        process.wait(10)
        self.remove_pid(process.pid)

    def add_dir(self, path: str | os.PathLike) -> None:
        if str(path) not in self.record.dirs:
            self.record.dirs.append(str(path))
            self._save()

    def close(self) -> None:
        """Forget the lab: call after everything it started is gone. Idempotent."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _save(self) -> None:
        with self._lock:   # a lab starts some parts from threads
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(asdict(self.record), indent=1))
            os.replace(tmp, self.path)


# kind -> what else to release once the processes of a lab of that kind are dead and
# before its dirs are removed (e.g. shared memory a SIGKILLed server left behind).
_CLEANUPS: dict[str, Callable[[dict], None]] = {}


def register_cleanup(kind: str, cleanup: Callable[[dict], None]) -> None:
    """Let a lab provider release what killing processes and removing dirs does not."""
    _CLEANUPS[kind] = cleanup


def _owner_alive(rec: dict) -> bool:
    pid = rec.get("owner_pid")
    if not isinstance(pid, int) or not proc.is_alive(pid):
        return False
    # Same pid but another start time: the owner died and the pid was reused.
    started = rec.get("owner_start_time")
    return started is None or proc.start_time(pid) == started


def reap_lab(rec: dict, timeout: float = 10.0) -> list[int]:
    """Kill every process of one lab record and remove its dirs; return pids still alive."""
    tag = rec.get("tag") or rec.get("lab_id") or ""
    victims = [p for p in rec.get("pids", []) if proc.is_alive(p) and tag and tag in proc.cmdline(p)]
    if tag:
        # Also what the record missed (the owner may have died between fork and save).
        victims += [p for p in proc.pids_matching(tag) if p not in victims]
    alive = proc.kill_tree(victims, timeout=timeout)
    cleanup = _CLEANUPS.get(rec.get("kind", ""))
    if cleanup is not None and not alive:
        try:
            cleanup(rec)
        except Exception:  # noqa: BLE001 - best effort; the dirs must still go
            log.exception("lab %s: cleanup of kind %s failed", rec.get("lab_id"), rec.get("kind"))
    for d in rec.get("dirs", []):
        shutil.rmtree(d, ignore_errors=True)
    return alive


def reap_stale(directory: str | os.PathLike | None = None, timeout: float = 10.0) -> list[str]:
    """Clean up every registered lab whose owner process is dead; return their lab ids.

    Labs of live owners (including other harness runs in parallel) are left alone.
    A record is deleted only once nothing of it is left alive.
    """
    reaped: list[str] = []
    d = state_dir(directory)
    if not d.is_dir():
        return reaped
    for path in sorted(d.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being written right now, or not ours
        if not isinstance(rec, dict) or rec.get("schema") != RECORD_SCHEMA:
            continue  # another kind of file: not ours to reap
        if _owner_alive(rec):
            continue
        alive = reap_lab(rec, timeout=timeout)
        if alive:
            log.warning("lab %s: pids %s survived SIGKILL; keeping its record", rec.get("lab_id"), alive)
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        reaped.append(str(rec.get("lab_id", path.stem)))
    return reaped
