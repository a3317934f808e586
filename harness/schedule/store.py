"""The schedule's shared state, in the job store's database: the jobs (plain data, read by
harness.schedule.jobstore), the run ledger, the leader's heartbeat, and the leader lock.

- Store URL: a SQLite file by default (``sqlite:///reports/schedule.sqlite``), or a PostgreSQL
  URL a team shares (``postgresql://user@host/db``; the password from PGPASSWORD or ~/.pgpass,
  never printed).
- The jobs (``drill_schedule_jobs_v2``): one row per job, all plain data: its id, kind and
  arguments (JSON), its schedule (a cron expression in UTC, or a date; JSON), its name and its
  next run time (a UTC timestamp, so the due jobs are a SQL query). No row holds code: the old
  table of APScheduler's SQLAlchemy job store (``drill_schedule_jobs``, pickled jobs) is never
  unpickled; the daemon rebuilds its jobs from the plans and drops it (harness.schedule.jobstore).
- The ledger (``drill_schedule_runs``) has one row per (drill, scheduled time), unique: whoever
  claims a scheduled time first runs it, so no time runs twice, even with two daemons.
- Leadership: one daemon schedules. On PostgreSQL it is the holder of a session advisory lock
  (released by the server when the holder's connection dies, so a killed daemon's lock is
  free at once and a standby takes over at its next poll); on SQLite a lock file beside the
  database (flock, released by the kernel when the process dies).
- A store that does not answer (a PostgreSQL host down or never answering) is StoreUnreachable
  (exit 4) after one connect timeout (CONNECT_TIMEOUT_S); a SQLite file that is not a database,
  or is damaged, is StoreInvalid (exit 2), named with the fix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    import psycopg
from sqlalchemy.engine import URL, make_url

from ..inputs import InputError, open_regular, printable

DEFAULT_STORE = "sqlite:///reports/schedule.sqlite"
JOBS_TABLE = "drill_schedule_jobs_v2"
PICKLED_JOBS_TABLE = "drill_schedule_jobs"  # APScheduler's SQLAlchemyJobStore, older harness: never read
LOCK_KEY = 0x6472696C6C  # "drill": the advisory lock every daemon of one store competes for
CONNECT_TIMEOUT_S = 5  # one attempt to reach a PostgreSQL store, then "does not answer" (exit 4)
SQLITE_HEADER = b"SQLite format 3\x00"


class StoreUnreachable(Exception):
    """The store does not answer (exit 4); the message names it, never its password."""


class StoreInvalid(ValueError):
    """The store named is not a usable job store (exit 2); the message names it and the fix."""


metadata = sa.MetaData()
jobs = sa.Table(
    JOBS_TABLE,
    metadata,
    sa.Column("id", sa.String(191), primary_key=True),
    sa.Column("next_run_time", sa.Double, index=True),  # UTC timestamp; NULL: paused
    sa.Column("kind", sa.String(16), nullable=False),  # drill | trigger | backup | staleness
    sa.Column("args", sa.Text, nullable=False),  # JSON list of strings, e.g. ["quarterly-database"]
    sa.Column("schedule", sa.Text, nullable=False),  # JSON {"cron": "0 6 1 1,4,7,10 *"} (UTC) or {"date": ISO}
    sa.Column("name", sa.Text, nullable=False),
)
runs = sa.Table(
    "drill_schedule_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("drill", sa.String(64), nullable=False),
    sa.Column("scheduled_for", sa.String(32), nullable=False),  # ISO UTC, seconds
    sa.Column("kind", sa.String(16), nullable=False),  # calendar | trigger
    sa.Column("status", sa.String(16), nullable=False),  # running, pass, fail, ... (STATUSES)
    sa.Column("late_s", sa.Float),
    sa.Column("started_at", sa.String(32)),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("exit_code", sa.Integer),
    sa.Column("out_dir", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("daemon", sa.String(128)),
    sa.UniqueConstraint("drill", "scheduled_for", name="one_run_per_scheduled_time"),
)
leader = sa.Table(
    "drill_schedule_leader",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("since", sa.String(32), nullable=False),
    sa.Column("heartbeat", sa.String(32), nullable=False),
)
# running: claimed, not finished; the verdicts of `drill run` by exit code; skipped (blackout),
# missed (beyond the grace), coalesced (folded into a later run), interrupted (the daemon stopped).
STATUSES = ("running", "pass", "fail", "unknown", "invalid", "skipped", "missed", "coalesced", "interrupted")
EXIT_STATUS = {0: "pass", 1: "fail", 2: "invalid", 3: "unknown"}


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def store_url(text: str | None) -> URL:
    """The SQLAlchemy URL of a --store value: sqlite:///FILE, or postgresql://... (psycopg 3).
    A value that is not one is refused without repeating what may be its password."""
    raw = text or os.environ.get("DRILL_SCHEDULE_STORE") or DEFAULT_STORE
    try:
        url = make_url(raw)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StoreInvalid(
            f"--store {masked(raw)}: not a store URL; use sqlite:///FILE or "
            f"postgresql://USER@HOST:PORT/DB (password from PGPASSWORD or ~/.pgpass)"
        ) from None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise StoreInvalid("--store: a SQLite store needs a file, e.g. sqlite:///reports/schedule.sqlite")
        return url
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    raise StoreInvalid(
        f"--store {shown(url)}: the job store is SQLite (sqlite:///FILE) or PostgreSQL "
        f"(postgresql://...), not {printable(url.get_backend_name(), 40)}"
    )


def masked(raw: str) -> str:
    """A --store value that is not a URL, for a message: a SQLite one whole; any other without what
    stands between its scheme and its last "@" (a user and password), or only its scheme when it
    has no "@", and without a password=... parameter."""
    import re

    if raw.lower().startswith("sqlite"):
        return repr(printable(raw, 200))
    scheme, colon, rest = raw.partition(":")
    if "@" not in raw:
        return repr(printable(scheme, 40) + (colon and ":...")) if colon else "(not shown: no scheme)"
    if not colon or "@" in scheme:
        scheme, colon, rest = "", "", raw
    slashes = rest[: len(rest) - len(rest.lstrip("/"))]
    text = f"{scheme}{colon}{slashes}***@{rest.rpartition('@')[2]}"
    text = re.sub(r"(?i)((?:ssl)?password=)[^&]*", r"\1***", text)
    return repr(printable(text, 200))


def shown(url: URL) -> str:
    """The URL for logs and output: never its password (nor a password=... parameter)."""
    import re

    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql")  # as the user wrote it, without the driver
    text = url.render_as_string(hide_password=True)
    return printable(re.sub(r"(?i)([?&](?:ssl)?password=)[^&]*", r"\1***", text))


def engine(url: URL) -> sa.Engine:
    """The store's engine, its tables created: StoreInvalid or StoreUnreachable when it cannot be
    used, after at most one connect timeout."""
    with store_errors(url):
        if url.get_backend_name() == "sqlite":
            _check_sqlite_file(Path(url.database or ""))
            made = sa.create_engine(url, connect_args={"timeout": 30})
        else:
            made = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        tolerate_create_race(lambda: metadata.create_all(made))
    return made


def _check_sqlite_file(path: Path) -> None:
    """A SQLite store's file is a SQLite database, or not there yet (then its folder is made)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreInvalid(
            f"{printable(path)}: cannot make the store's folder ({exc.strerror or exc}); "
            f"name a file in a folder you can write: --store sqlite:///FILE"
        ) from None
    try:
        fd = open_regular(path, "the schedule store")
    except FileNotFoundError:
        return
    except InputError as exc:
        raise StoreInvalid(f"{exc} (--store sqlite:///FILE)") from None
    try:
        head = os.read(fd, len(SQLITE_HEADER))
    finally:
        os.close(fd)
    if head and head != SQLITE_HEADER:
        raise StoreInvalid(_not_a_store(path, "it does not start as a SQLite database does"))


def _not_a_store(path: Path | str, why: str) -> str:
    return (
        f"{printable(path)}: not a usable SQLite job store ({why}); name the right file with "
        f"--store sqlite:///FILE, or move this one away: `drill schedule run` then makes a new store, "
        f"its jobs rebuilt from the plans (the run ledger starts empty)"
    )


@contextlib.contextmanager
def store_errors(url: URL) -> Iterator[None]:
    """Database errors of the store as StoreUnreachable (exit 4) or StoreInvalid (exit 2), one line
    naming the store (never its password) and the fix; any other error passes through (a bug)."""
    try:
        yield
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        translated = _translated(url, exc)
        if translated is None:
            raise
        raise translated from None


def _translated(url: URL, exc: Exception) -> Exception | None:
    orig = getattr(exc, "orig", None) or exc
    cause = printable(str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__, 200)
    if url.password:
        cause = cause.replace(str(url.password), "***")
    low = cause.lower()
    if url.get_backend_name() == "sqlite":
        if isinstance(exc, sa.exc.OperationalError) and ("locked" in low or "busy" in low):
            return StoreUnreachable(
                f"{printable(url.database)}: the store is locked by another process for more "
                f"than 30 s ({cause}); try again, or find what holds it"
            )
        if isinstance(exc, sa.exc.OperationalError) or type(exc) is sa.exc.DatabaseError:
            return StoreInvalid(_not_a_store(url.database or "", cause))
        return None
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)):
        if any(words in low for words in ("authentication failed", "no password supplied", "does not exist")):
            return StoreInvalid(
                f"the store {shown(url)} refuses the connection ({cause}); fix the user or "
                f"database in --store, or the password in PGPASSWORD or ~/.pgpass"
            )
        return StoreUnreachable(
            f"the store {shown(url)} does not answer ({cause}); check the host and port, and that PostgreSQL runs there"
        )
    if isinstance(exc, sa.exc.ProgrammingError) and any(
        words in low for words in ("permission denied", "invalid dsn", "invalid connection option")
    ):
        return StoreInvalid(
            f"the store {shown(url)} cannot be used ({cause}); fix --store, or grant the "
            f"user the right to create and write the drill_schedule_* tables"
        )
    return None


def tolerate_create_race(create, attempts: int = 5) -> None:
    """Run a CREATE TABLE IF NOT EXISTS-like step that another process may be running at the same
    moment (a daemon and `drill schedule list` on a new store): both see no table, one creates it,
    the other's CREATE fails "already exists" (or, on PostgreSQL, a duplicate key of the
    catalogue); the step is tried again and then finds it. Any other error (the store does not
    answer) is raised at once, not tried again."""
    import time

    for attempt in range(attempts):
        try:
            create()
            return
        except sa.exc.DBAPIError as exc:
            lost_race = isinstance(exc, sa.exc.IntegrityError) or "already exists" in str(exc).lower()
            if not lost_race or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


class Ledger:
    """The run ledger: claims, results and the leader's heartbeat."""

    def __init__(self, eng: sa.Engine):
        self.engine = eng

    def claim(
        self,
        drill: str,
        scheduled_for: dt.datetime,
        kind: str,
        status: str = "running",
        late_s: float | None = None,
        reason: str | None = None,
        out_dir: str | None = None,
    ) -> bool:
        """Record a scheduled time's run (or its skip); False when it is already recorded."""
        row = dict(
            drill=drill,
            scheduled_for=iso(scheduled_for),
            kind=kind,
            status=status,
            late_s=late_s,
            reason=reason,
            out_dir=out_dir,
            daemon=identity(),
            started_at=iso(now_utc()),
            finished_at=None if status == "running" else iso(now_utc()),
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(runs.insert().values(**row))
        except sa.exc.IntegrityError:
            return False
        return True

    def finish(
        self,
        drill: str,
        scheduled_for: dt.datetime,
        status: str,
        exit_code: int | None = None,
        reason: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.drill == drill, runs.c.scheduled_for == iso(scheduled_for))
                .values(
                    status=status,
                    exit_code=exit_code,
                    finished_at=iso(now_utc()),
                    **({"reason": reason} if reason else {}),
                )
            )

    def interrupted_by_dead(self, alive) -> int:
        """Runs left "running" by a daemon of this host that is gone: marked interrupted."""
        host = socket.gethostname()
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(runs.c.id, runs.c.daemon).where(runs.c.status == "running")).all()
            dead = [r.id for r in rows if _pid_on(host, r.daemon) is not None and not alive(_pid_on(host, r.daemon))]
            if dead:
                conn.execute(
                    runs.update()
                    .where(runs.c.id.in_(dead))
                    .values(status="interrupted", finished_at=iso(now_utc()), reason="the daemon running it stopped")
                )
        return len(dead)

    def runs(self, drill: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(runs).order_by(runs.c.scheduled_for, runs.c.id)
        if drill is not None:
            query = query.where(runs.c.drill == drill)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def last(self, drill: str) -> dict[str, Any] | None:
        done = [r for r in self.runs(drill) if r["status"] not in ("coalesced",)]
        return done[-1] if done else None

    def heartbeat(self, holder: str, since: dt.datetime) -> None:
        with self.engine.begin() as conn:
            values = dict(holder=holder, since=iso(since), heartbeat=iso(now_utc()))
            if conn.execute(leader.update().where(leader.c.name == "leader").values(**values)).rowcount == 0:
                conn.execute(leader.insert().values(name="leader", **values))

    def leader(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(leader).where(leader.c.name == "leader")).first()
        return dict(row._mapping) if row else None


def _pid_on(host: str, daemon: Any) -> int | None:
    """The pid of a ledger row's daemon ("host:pid") when it ran on `host`; None otherwise (or
    when the value is not one)."""
    if not isinstance(daemon, str):
        return None
    name, colon, pid = daemon.rpartition(":")
    if not colon or name != host:
        return None
    return int(pid) if pid.isascii() and pid.isdigit() and len(pid) < 10 else None


class FileLeadership:
    """Leader lock of a SQLite store: flock on `<database>.leader` (freed when the holder dies)."""

    def __init__(self, url: URL):
        self.path = Path(f"{url.database}.leader")
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        if self.fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def holding(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class PgLeadership:
    """Leader lock of a PostgreSQL store: a session advisory lock on a connection of its own,
    with TCP keepalives, so the server frees it soon after the holder is gone. `holding()` checks
    the connection still answers: a daemon that lost it stops scheduling (it may no longer be the
    only one)."""

    def __init__(self, url: URL):
        self.conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        import psycopg

        from ..backup.pgtools import value_of

        if self.conn is not None:
            return self.holding()
        try:
            conn = psycopg.connect(
                self.conninfo,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                application_name="drill-schedule-leader",
            )
        except psycopg.Error:
            return False
        if value_of(conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))):
            self.conn = conn
            return True
        conn.close()
        return False

    def holding(self) -> bool:
        import psycopg

        if self.conn is None:
            return False
        try:
            self.conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            self.release()
            return False

    def release(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self.conn = None


def leadership(url: URL):
    return FileLeadership(url) if url.get_backend_name() == "sqlite" else PgLeadership(url)
