"""Leftover registry: each lab records its owner, processes and dirs so a later run can clean up.

Contract: a lab writes ``<state_dir>/<lab_id>.json`` before it starts anything and
keeps it current while it runs; ``down()`` removes it. A file whose owner process is
gone belongs to a harness that was killed mid-drill: ``reap_stale()`` SIGKILLs what
that lab started (and their children) and removes its dirs.

Local trust (the harness often runs as root, and the registry says what to kill and delete):

- the state dir is private to the user: ``/tmp/drill-<uid>`` by default, created 0700; it (or
  ``DRILL_STATE_DIR``) is refused (``UnsafeStateDir``) when another user owns it, it is a
  symbolic link, or group/others may write it;
- a record is read only when the file is a regular file owned by the user and not writable by
  group/others (``read_trusted``); every file is written by exclusive creation of a temp file
  beside it, then renamed over (``write_private``): a planted symlink is never followed;
- a pid is signalled only while it is the very process that was registered: its start time
  (/proc/PID/stat field 22) is stored with it at registration and must match, and its command
  line must still hold the lab's tag; a record with no start time for its owner is dropped
  without acting on it. A process found by the tag alone must have started after the record;
- a dir is removed only when it is under a temp dir (the system's, /dev/shm or DRILL_LAB_DIR),
  is not a symlink, and is owned by the user (or, for root, by the PostgreSQL server user).
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.lab import proc

log = logging.getLogger(__name__)

RECORD_SCHEMA = "drill-lab-record/1"
SERVER_USER = "postgres"  # harness.lab.postgres.RUN_AS: owns a PostgreSQL lab's dirs when we are root
MIN_TAG_LEN = 8  # a tag is a lab's unique id, never a broad name


class UnsafeStateDir(RuntimeError):
    """The state dir could be written by someone else: refused (the message says the fix)."""


def default_state_dir() -> Path:
    """The per-user default: /tmp/drill-<uid> (one fixed place, so `drill lab down` and `drill halt`
    in another shell find the labs and runs of this user)."""
    return Path("/tmp") / f"drill-{os.geteuid()}"


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def ensure_private_dir(path: str | os.PathLike, what: str = "the drill state dir") -> Path:
    """Create path (0700) if missing; raise UnsafeStateDir unless it is a real directory owned by
    this user that neither group nor others may write, in a parent nobody else can swap it in."""
    path = Path(os.path.abspath(path))
    env_hint = "or set DRILL_STATE_DIR to a directory only you can write (mkdir -m 700 DIR)"
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except FileExistsError:
        pass  # a symlink or a file: said below
    except OSError as exc:
        raise UnsafeStateDir(f"{what} {path} cannot be created: {exc.strerror or exc}; {env_hint}") from exc
    st = os.lstat(path)
    me = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeStateDir(
            f"{what} {path} is a symbolic link (to {os.readlink(path)}): refused, records "
            f"could be planted through it; remove it (rm {path}), {env_hint}"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeStateDir(f"{what} {path} is not a directory; remove it (rm {path}), {env_hint}")
    if st.st_uid != me:
        raise UnsafeStateDir(
            f"{what} {path} is owned by {_owner_name(st.st_uid)}, not by you "
            f"({_owner_name(me)}): refused, its records could be forged; remove it "
            f"(sudo rm -rf {path}), {env_hint}"
        )
    if st.st_mode & 0o022:
        raise UnsafeStateDir(
            f"{what} {path} is writable by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}): refused, any local user could plant "
            f"records in it; fix: chmod 700 {path}, {env_hint}"
        )
    parent = os.lstat(path.parent)
    if parent.st_uid not in (me, 0) or (parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX):
        raise UnsafeStateDir(
            f"{what} {path} is in {path.parent}, which {_owner_name(parent.st_uid)} owns "
            f"(mode {stat.S_IMODE(parent.st_mode):04o}): another user could swap the "
            f"directory; {env_hint}"
        )
    return path


def state_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The registry directory, private to this user (created 0700 if missing): explicit argument,
    else env DRILL_STATE_DIR, else /tmp/drill-<uid>. Raises UnsafeStateDir if it is not private."""
    return ensure_private_dir(explicit or os.environ.get("DRILL_STATE_DIR") or default_state_dir())


def read_trusted(path: str | os.PathLike) -> dict | None:
    """The JSON object in path, or None unless the file is a regular file (not a symlink) owned by
    this user and not writable by group/others; untrusted files are logged, never acted on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None  # gone, or a symlink (ELOOP)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            log.warning(
                "ignoring %s: not a regular file of yours that only you can write (owner %s, mode %04o)",
                path,
                _owner_name(st.st_uid),
                stat.S_IMODE(st.st_mode),
            )
            return None
        try:
            data = json.loads(f.read())
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def trusted_files(pattern: str, directory: str | os.PathLike | None = None) -> list[tuple[Path, dict]]:
    """(path, JSON object) of every trusted file of the state dir matching the glob pattern."""
    found = []
    for path in sorted(state_dir(directory).glob(pattern)):
        data = read_trusted(path)
        if data is not None:
            found.append((path, data))
    return found


def write_private(path: str | os.PathLike, text: str, mode: int = 0o600) -> Path:
    """Write text to path atomically without following any symlink: a new temp file beside it
    (O_CREAT | O_EXCL | O_NOFOLLOW, `mode`), renamed over path (rename replaces a symlink itself,
    never its target). Put path in a private dir (state_dir())."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@dataclass
class LabRecord:
    """What one lab started. ``tag`` is a unique string found in the command line of
    every process of the lab; ``starts`` holds each pid's start time (str(pid) -> clock ticks
    since boot, taken when it was registered): a pid is only killed while both still match."""

    lab_id: str
    kind: str
    owner_pid: int
    owner_start_time: int | None
    tag: str
    pids: list[int] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    starts: dict[str, int] = field(default_factory=dict)
    # Marks the file as a record of this registry: other JSON files in the state dir
    # (e.g. a lab manifest for `drill lab status`) are never reaped.
    schema: str = RECORD_SCHEMA


class Registration:
    """A live lab's entry in the registry; every change is written at once (atomically)."""

    def __init__(
        self, lab_id: str, kind: str, tag: str | None = None, directory: str | os.PathLike | None = None
    ) -> None:
        self.dir = state_dir(directory)
        me = os.getpid()
        self.record = LabRecord(
            lab_id=lab_id, kind=kind, owner_pid=me, owner_start_time=proc.start_time(me), tag=tag or lab_id
        )
        self.path = self.dir / f"{lab_id}.json"
        self._lock = threading.RLock()
        self._save()

    def add_pid(self, pid: int) -> None:
        with self._lock:
            if pid not in self.record.pids:
                self.record.pids.append(pid)
                started = proc.start_time(pid)
                if started is not None:  # already gone: never signalled by a reaper
                    self.record.starts[str(pid)] = started
                self._save()

    def remove_pid(self, pid: int) -> None:
        with self._lock:
            if pid in self.record.pids:
                self.record.pids.remove(pid)
                self.record.starts.pop(str(pid), None)
                self._save()

    def kill(self, process) -> None:
        """SIGKILL a process this lab started (a fault), reap it, and forget its pid."""
        process.kill()
        process.wait(10)
        self.remove_pid(process.pid)

    def add_dir(self, path: str | os.PathLike) -> None:
        with self._lock:
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
        with self._lock:  # a lab starts some parts from threads
            write_private(self.path, json.dumps(asdict(self.record), indent=1))


# kind -> what else to release once the processes of a lab of that kind are dead and
# before its dirs are removed (e.g. shared memory a SIGKILLed server left behind).
_CLEANUPS: dict[str, Callable[[dict], None]] = {}


def register_cleanup(kind: str, cleanup: Callable[[dict], None]) -> None:
    """Let a lab provider release what killing processes and removing dirs does not."""
    _CLEANUPS[kind] = cleanup


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _owner_alive(rec: dict) -> bool:
    """The owner still runs: same pid *and* same start time (else it died and the pid was reused)."""
    return _is_int(rec.get("owner_pid")) and proc.same_process(rec["owner_pid"], rec.get("owner_start_time"))


def temp_roots() -> list[str]:
    """Where labs make their dirs (and so the only places a reaper removes dirs from)."""
    roots = {os.path.realpath(tempfile.gettempdir()), os.path.realpath("/tmp"), "/dev/shm"}
    if os.environ.get("DRILL_LAB_DIR"):
        roots.add(os.path.realpath(os.environ["DRILL_LAB_DIR"]))
    return sorted(roots)


def _dir_owners() -> set[int]:
    owners = {os.geteuid()}
    if os.geteuid() == 0:
        try:
            owners.add(pwd.getpwnam(SERVER_USER).pw_uid)  # PostgreSQL lab dirs are chown'ed to it
        except KeyError:
            pass
    return owners


def removable_dir(path: str) -> bool:
    """A recorded dir may be removed: an absolute path with no symlink in it, strictly under a
    temp root, a directory owned by this user (or by the PostgreSQL server user, for root)."""
    if not isinstance(path, str) or not os.path.isabs(path):
        return False
    normal = os.path.normpath(path)
    if os.path.realpath(normal) != normal:
        return False
    if not any(normal.startswith(root.rstrip("/") + "/") for root in temp_roots()):
        return False
    try:
        st = os.lstat(normal)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid in _dir_owners()


def _victims(rec: dict) -> list[int]:
    """The pids of a (trusted) record that may be signalled: each still the registered process
    (same start time) carrying the tag; and processes carrying the tag that started after the
    record was created (the owner may have died between fork and save)."""
    tag = rec.get("tag") or rec.get("lab_id") or ""
    if not isinstance(tag, str) or len(tag) < MIN_TAG_LEN:
        return []
    starts = rec.get("starts")
    if not isinstance(starts, dict):
        starts = {}
    victims = [
        p
        for p in rec.get("pids", [])
        if _is_int(p) and proc.same_process(p, starts.get(str(p))) and tag in proc.cmdline(p)
    ]
    created = rec.get("created")
    if isinstance(created, (int, float)):
        for p in proc.pids_matching(tag):
            began = proc.started_at(p)
            # the record is written before its lab starts anything; 2 s: /proc's boot time is
            # whole seconds and the wall clock may have been stepped since boot
            if p not in victims and began is not None and began >= created - 2.0:
                victims.append(p)
    return victims


def reap_lab(rec: dict, timeout: float = 10.0) -> list[int]:
    """Kill every process of one (trusted) lab record and remove its dirs; return pids still alive."""
    alive = proc.kill_tree(_victims(rec), timeout=timeout)
    dirs = [d for d in rec.get("dirs", []) if removable_dir(d)]
    skipped = [d for d in rec.get("dirs", []) if d not in dirs]
    if skipped:
        log.warning("lab %s: not removing %s (not a dir of yours under a temp dir)", rec.get("lab_id"), skipped)
    cleanup = _CLEANUPS.get(rec.get("kind", ""))
    if cleanup is not None and not alive:
        try:
            cleanup({**rec, "dirs": dirs})
        except Exception:  # noqa: BLE001 - best effort; the dirs must still go
            log.exception("lab %s: cleanup of kind %s failed", rec.get("lab_id"), rec.get("kind"))
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    return alive


def reap_stale(directory: str | os.PathLike | None = None, timeout: float = 10.0) -> list[str]:
    """Clean up every registered lab whose owner process is dead; return their lab ids.

    Labs of live owners (including other harness runs in parallel) are left alone. Only trusted
    records are read (module docstring); a record whose owner has no start time is dropped
    without acting on it. A record is deleted only once nothing of it is left alive.
    """
    reaped: list[str] = []
    for path, rec in trusted_files("*.json", directory):
        if rec.get("schema") != RECORD_SCHEMA:
            continue  # another kind of file: not ours to reap
        if not (_is_int(rec.get("owner_pid")) and _is_int(rec.get("owner_start_time"))):
            log.warning(
                "dropping lab record %s: its owner has no start time, so no pid of it can be told from a reused one",
                path,
            )
            path.unlink(missing_ok=True)
            continue
        if _owner_alive(rec):
            continue
        alive = reap_lab(rec, timeout=timeout)
        if alive:
            log.warning("lab %s: pids %s survived SIGKILL; keeping its record", rec.get("lab_id"), alive)
            continue
        path.unlink(missing_ok=True)
        reaped.append(str(rec.get("lab_id", path.stem)))
    return reaped
