"""Process facts from /proc: liveness (zombies count as dead), descendants, kill with a deadline."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from typing import Any, Protocol

from ..wait import poll


class ProcessHandle(Protocol):
    """A part's running process: a subprocess.Popen, or the container lab's ContainerProcess."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | Any: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None if the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may hold spaces and parentheses: the state follows the *last* ')'.
    return raw[raw.rfind(")") + 2 :].split()


def state(pid: int) -> str | None:
    """One-letter process state (R, S, D, T, Z, X, ...) or None when the pid does not exist."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def start_time(pid: int) -> int | None:
    """Start time in clock ticks since boot: together with the pid it names one process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def same_process(pid: int, started: int | None) -> bool:
    """True when pid is alive and is the process that had start time `started` (pids are
    reused: a pid alone names nothing). A missing start time never matches."""
    return isinstance(started, int) and not isinstance(started, bool) and is_alive(pid) and start_time(pid) == started


def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def started_at(pid: int) -> float | None:
    """When the process started, in epoch seconds (to the clock tick), or None if it is gone."""
    ticks, boot = start_time(pid), _boot_time()
    if ticks is None or boot is None:
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def is_alive(pid: int) -> bool:
    """True when the pid exists and is neither a zombie nor dead (X).

    Exited processes can stay zombies for a while when their parent (here often
    the container's init) is slow to reap them; a zombie holds no port, no file
    and no shared memory, so it counts as gone.
    """
    return state(pid) not in (None, "Z", "X")


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children_of(pid: int) -> list[int]:
    return [p for p in all_pids() if parent_of(p) == pid]


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid (children, grandchildren, ...), found by ppid."""
    by_parent: dict[int, list[int]] = {}
    for p in all_pids():
        ppid = parent_of(p)
        if ppid is not None:
            by_parent.setdefault(ppid, []).append(p)
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return [p for p in found if is_alive(p)]


def pids_matching(tag: str) -> list[int]:
    """Live processes whose command line contains tag (a lab's unique id, never a broad name)."""
    me = os.getpid()
    return [p for p in all_pids() if p != me and is_alive(p) and tag in cmdline(p)]


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """SIGKILL each pid and all its descendants; wait until none is alive.

    1. SIGSTOP the roots so that they cannot fork new children while we look.
    2. Collect the descendants by ppid *before* killing: once a parent dies its
       children are re-parented to init and can no longer be found from it.
       PostgreSQL children call setsid(), so a process-group kill is not enough.
    3. SIGKILL everything, then poll until every pid is gone or a zombie.
    Returns the pids still alive at the deadline (empty on success).
    """
    roots = [p for p in pids if is_alive(p)]
    for p in roots:
        _signal(p, signal.SIGSTOP)
    victims: list[int] = []
    for p in roots:
        for q in [p, *descendants(p)]:
            if q not in victims:
                victims.append(q)
    for q in victims:
        _signal(q, signal.SIGKILL)
    return wait_gone(victims, timeout)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Poll until none of pids is alive; return those still alive at the deadline."""
    pids = list(pids)
    return poll(
        lambda: [p for p in pids if is_alive(p)], until=lambda alive: not alive, timeout=timeout, interval=0.01
    ).value


def stop_process(process, timeout: float = 5.0) -> None:
    """SIGTERM a child process, SIGKILL it (and its children) if it does not exit in time."""
    import subprocess

    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_tree([process.pid])
        process.wait(timeout)
