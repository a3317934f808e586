"""The schedule's job store for APScheduler 3.x: jobs as plain data, never code.

APScheduler's own SQLAlchemyJobStore pickles each job, so whoever can write its table runs code
in every process that reads it (`drill schedule list` included). This store writes a row of
plain values per job (harness.schedule.store.jobs): its id, its kind and arguments (JSON), its
schedule (a 5-field cron in UTC, or a date; JSON), its name and its next run time (a UTC
timestamp, so the due jobs are a SQL query). Reading a row builds the Job from those values; its
callable is always the module-level `fire`, which the daemon's executor stands in for: nothing in
a row names code.

Every row is checked before it becomes a Job (`parse_row`): a kind the harness has, arguments
that fit it (a drill id, a backup job), an id made from them, a cron that fires or an ISO date, a
finite timestamp. A row that fails is never run:
- in the daemon (`owner=True`), it is logged, naming the row, and removed; the daemon rebuilds
  drill, backup and staleness jobs from the plans when it starts leading;
- anywhere else (list, status, trigger) it is left alone and kept in `unreadable` for the
  command to report (exit 2).

The table of older harness versions (`drill_schedule_jobs`, pickled) is never unpickled:
`read_pickled_table` reads only its plain `id` and `next_run_time` columns, so the daemon can
keep each rebuilt job's next run time, and `drop_pickled_table` drops it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from ..calendar import PlanCron, cron_trigger, never_fires
from ..inputs import InputError, parse_json, printable
from ..plan import DRILL_ID
from .backup_jobs import JOBS as BACKUP_JOBS
from .store import JOBS_TABLE, PICKLED_JOBS_TABLE, jobs, tolerate_create_race

UTC = dt.UTC
KINDS = ("drill", "trigger", "backup", "staleness")
FIRE_REF = "harness.schedule.jobstore:fire"
MAX_TEXT = 4096  # a row's args, schedule or name: a few names, never more
MAX_NAME = 1000  # a job's name (a plan's title) is written at most this long
MAX_TIMESTAMP = 253402300799.0  # 9999-12-31T23:59:59Z
TRIGGER_STAMP = re.compile(r"\d{8}T\d{12}Z")


def fire(*args: str) -> None:
    """The job function of every schedule job; the daemon's executor (DrillExecutor) runs the jobs
    from their kind and arguments, so this is never called."""
    raise RuntimeError("schedule jobs are run by the drill schedule daemon's executor")


class UnreadableJob(ValueError):
    """A job row that is not a job of the harness: never run. The message names the row."""

    def __init__(self, job_id: Any, reason: str):
        self.job_id = printable(job_id if isinstance(job_id, str) else repr(job_id), 120)
        self.reason = reason
        super().__init__(f"job row '{self.job_id}' of table {JOBS_TABLE}: {reason}")


@dataclass(frozen=True)
class JobSpec:
    """One job as plain data: what a row holds, checked."""

    id: str
    kind: str
    args: tuple[str, ...]  # after the kind: (drill id,), (backup job,), ()
    schedule: dict[str, str]  # {"cron": "0 6 1 1,4,7,10 *"} or {"date": ISO time}
    trigger: BaseTrigger
    name: str
    next_run_time: dt.datetime | None


def _text(job_id: Any, column: str, value: Any) -> str:
    if isinstance(value, bytes):
        raise UnreadableJob(job_id, f"{column} is bytes, not text (a pickle of an older harness or a forged row)")
    if not isinstance(value, str):
        raise UnreadableJob(job_id, f"{column} is {type(value).__name__}, not text")
    if len(value) > MAX_TEXT:
        raise UnreadableJob(job_id, f"{column} is longer than {MAX_TEXT} characters")
    return value


def _json(job_id: Any, column: str, value: Any) -> Any:
    try:
        return parse_json(_text(job_id, column, value), column)
    except InputError as exc:
        raise UnreadableJob(job_id, str(exc)) from None


def parse_row(job_id: Any, next_run_time: Any, kind: Any, args: Any, schedule: Any, name: Any) -> JobSpec:
    """The JobSpec of a row's values, or UnreadableJob naming the row and what is wrong."""
    if not isinstance(job_id, str) or not job_id or len(job_id) > 191:
        raise UnreadableJob(job_id, "the id is not a job id")
    if kind not in KINDS:
        raise UnreadableJob(job_id, f"kind {printable(repr(kind), 40)} is not one of {', '.join(KINDS)}")
    values = _json(job_id, "args", args)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise UnreadableJob(job_id, "args is not a JSON list of strings")
    expected = _expected_id(kind, values)
    if expected is None:
        raise UnreadableJob(job_id, f"args {printable(values, 80)} do not fit kind {kind}")
    if (
        job_id != expected
        if kind != "trigger"
        else not (job_id.startswith(expected) and TRIGGER_STAMP.fullmatch(job_id[len(expected) :]))
    ):
        raise UnreadableJob(
            job_id,
            f"the id does not match its kind and args (expected {printable(expected, 80)}"
            f"{'<time>' if kind == 'trigger' else ''})",
        )
    when = _json(job_id, "schedule", schedule)
    trigger = _trigger(job_id, kind, when)
    if not isinstance(name, str) or not name or len(name) > MAX_TEXT:
        raise UnreadableJob(job_id, "the name is not a non-empty text")
    return JobSpec(job_id, kind, tuple(values), when, trigger, name, _timestamp(job_id, next_run_time))


def _expected_id(kind: str, values: list[str]) -> str | None:
    """The id a job of `kind` with `values` has (a trigger's: its prefix), or None when they do not fit."""
    if kind == "drill" and len(values) == 1 and DRILL_ID.fullmatch(values[0]):
        return f"drill:{values[0]}"
    if kind == "backup" and len(values) == 1 and values[0] in BACKUP_JOBS:
        return values[0]
    if kind == "staleness" and not values:
        return "staleness"
    if kind == "trigger" and len(values) == 1 and (DRILL_ID.fullmatch(values[0]) or values[0] in BACKUP_JOBS):
        return f"trigger:{values[0]}:"
    return None


def _trigger(job_id: str, kind: str, when: Any) -> BaseTrigger:
    if kind == "trigger":
        if not isinstance(when, dict) or set(when) != {"date"} or not isinstance(when["date"], str):
            raise UnreadableJob(job_id, 'schedule is not {"date": ISO time} (a trigger runs once)')
        try:
            run_date = dt.datetime.fromisoformat(when["date"])
        except ValueError:
            raise UnreadableJob(job_id, f"schedule date {printable(when['date'], 40)!r} is not an ISO time") from None
        if run_date.tzinfo is None:
            raise UnreadableJob(job_id, "schedule date has no UTC offset")
        return DateTrigger(run_date=run_date.astimezone(UTC), timezone=UTC)
    if not isinstance(when, dict) or set(when) != {"cron"} or not isinstance(when["cron"], str):
        raise UnreadableJob(job_id, 'schedule is not {"cron": "5-field cron, UTC"}')
    try:
        trigger = cron_trigger(when["cron"])
    except (ValueError, TypeError) as exc:
        raise UnreadableJob(
            job_id, f"schedule cron {printable(when['cron'], 40)!r} is not a 5-field cron ({printable(exc, 80)})"
        ) from None
    problem = never_fires(when["cron"])
    if problem:
        raise UnreadableJob(job_id, f"schedule cron {problem.partition(';')[0]}")
    return trigger


def _timestamp(job_id: str, value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= MAX_TIMESTAMP
    ):
        raise UnreadableJob(job_id, f"next_run_time {printable(repr(value), 40)} is not a UTC timestamp")
    return dt.datetime.fromtimestamp(value, UTC)


def job_row(job: Job) -> dict[str, Any]:
    """The row of a Job the harness made (func `fire`, args kind first, a PlanCron or a date);
    ValueError for any other job: this store holds the harness's jobs only."""
    if job.func is not fire or job.kwargs:
        raise ValueError(f"job {job.id}: only the schedule's own jobs (func fire, no kwargs) are stored")
    args = [str(a) for a in job.args]
    if not args or args[0] not in KINDS:
        raise ValueError(f"job {job.id}: args must start with its kind ({', '.join(KINDS)})")
    if isinstance(job.trigger, PlanCron):
        schedule = {"cron": job.trigger.expression}
    elif isinstance(job.trigger, DateTrigger):
        schedule = {"date": job.trigger.run_date.astimezone(UTC).isoformat()}
    else:
        raise ValueError(f"job {job.id}: its trigger must be a cron (calendar.cron_trigger) or a date")
    row = {
        "id": job.id,
        "kind": args[0],
        "args": json.dumps(args[1:]),
        "schedule": json.dumps(schedule),
        "name": job.name[:MAX_NAME],
        "next_run_time": None if job.next_run_time is None else job.next_run_time.timestamp(),
    }
    parse_row(row["id"], row["next_run_time"], row["kind"], row["args"], row["schedule"], row["name"])
    return row  # never a row this store could not read back


class PlainJobStore(BaseJobStore):
    """APScheduler job store on the `drill_schedule_jobs_v2` table (see the module docstring).
    `owner`: the leading daemon (removes unreadable rows, logging each); otherwise a reader that
    keeps them in `unreadable` (job id -> reason) for the command to report."""

    def __init__(self, engine: sa.Engine, owner: bool = False, log: Callable[[str], None] | None = None):
        super().__init__()
        self.engine = engine
        self.owner = owner
        self.log = log or (lambda line: None)
        self.unreadable: dict[str, str] = {}

    def start(self, scheduler, alias):
        super().start(scheduler, alias)
        tolerate_create_race(lambda: jobs.create(self.engine, checkfirst=True))

    def shutdown(self):
        """The engine is the ledger's too: left open."""

    # -- reading -------------------------------------------------------------------------------
    def _rows(self, *conditions) -> list[Any]:
        query = sa.select(jobs).order_by(jobs.c.next_run_time, jobs.c.id)
        if conditions:
            query = query.where(*conditions)
        with self.engine.begin() as conn:
            return list(conn.execute(query))

    def _job(self, row) -> Job | None:
        """The Job of a row; None for an unreadable one (removed by the owner, kept for report otherwise)."""
        try:
            spec = parse_row(row.id, row.next_run_time, row.kind, row.args, row.schedule, row.name)
        except UnreadableJob as bad:
            self._unreadable(row.id, bad)
            return None
        self.unreadable.pop(spec.id, None)
        return self._build(spec)

    def _unreadable(self, raw_id: Any, bad: UnreadableJob) -> None:
        if not self.owner:
            self.unreadable[bad.job_id] = bad.reason
            return
        with self.engine.begin() as conn:
            conn.execute(jobs.delete().where(jobs.c.id == raw_id))
        self.log(
            f"schedule: {bad}; never run: the row is removed (drill, backup and staleness jobs are "
            f"rebuilt from the plans when a daemon starts leading; a trigger must be queued again)"
        )

    def _build(self, spec: JobSpec) -> Job:
        """A Job from checked plain data; its callable is `fire`, named here, never by the row."""
        job = Job.__new__(Job)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        job.id, job.name = spec.id, spec.name
        job.func, job.func_ref = fire, FIRE_REF
        job.args, job.kwargs = (spec.kind, *spec.args), {}
        job.trigger, job.executor = spec.trigger, "default"
        job.misfire_grace_time, job.coalesce, job.max_instances = None, False, 1000
        job.next_run_time = spec.next_run_time
        return job

    def _jobs(self, *conditions) -> list[Job]:
        return [job for job in map(self._job, self._rows(*conditions)) if job is not None]

    def lookup_job(self, job_id):
        rows = self._rows(jobs.c.id == job_id)
        return self._job(rows[0]) if rows else None

    def get_due_jobs(self, now):
        return self._jobs(jobs.c.next_run_time <= now.timestamp())

    def get_next_run_time(self):
        # the first row that reads: an unreadable row's time must not wake the scheduler (again and again)
        for row in self._rows(jobs.c.next_run_time.is_not(None)):
            job = self._job(row)
            if job is not None:
                return job.next_run_time
        return None

    def get_all_jobs(self):
        found = self._jobs()
        self._fix_paused_jobs_sorting(found)
        return found

    # -- writing -------------------------------------------------------------------------------
    def add_job(self, job):
        row = job_row(job)
        try:
            with self.engine.begin() as conn:
                conn.execute(jobs.insert().values(**row))
        except sa.exc.IntegrityError:
            raise ConflictingIdError(job.id) from None

    def update_job(self, job):
        row = job_row(job)
        with self.engine.begin() as conn:
            if conn.execute(jobs.update().where(jobs.c.id == job.id).values(**row)).rowcount == 0:
                raise JobLookupError(job.id)

    def remove_job(self, job_id):
        with self.engine.begin() as conn:
            if conn.execute(jobs.delete().where(jobs.c.id == job_id)).rowcount == 0:
                raise JobLookupError(job_id)

    def remove_all_jobs(self):
        with self.engine.begin() as conn:
            conn.execute(jobs.delete())

    def __repr__(self):
        return f"<{self.__class__.__name__} ({JOBS_TABLE})>"


# ---- the pickled table of older harness versions ------------------------------------------------


def _pickled_table() -> sa.Table:
    """Only the plain columns of the old table: its job_state (a pickle) is never selected."""
    return sa.Table(
        PICKLED_JOBS_TABLE,
        sa.MetaData(),
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float),
    )


def has_pickled_table(engine: sa.Engine) -> bool:
    return sa.inspect(engine).has_table(PICKLED_JOBS_TABLE)


def read_pickled_table(engine: sa.Engine) -> list[tuple[str, dt.datetime | None]] | None:
    """Each row of the old table as (id, next run time or None when it is not a timestamp); None
    when there is no old table. Reads the id and next_run_time columns only."""
    if not has_pickled_table(engine):
        return None
    old = _pickled_table()
    with engine.begin() as conn:
        rows = conn.execute(sa.select(old.c.id, old.c.next_run_time)).all()
    found = []
    for raw_id, raw_time in rows:
        try:
            when = _timestamp(raw_id, raw_time)
        except UnreadableJob:
            when = None
        found.append((printable(raw_id if isinstance(raw_id, str) else repr(raw_id), 120), when))
    return found


def drop_pickled_table(engine: sa.Engine) -> None:
    _pickled_table().drop(engine, checkfirst=True)
