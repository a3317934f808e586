"""`drill schedule run`: the quarterly calendar as a daemon, on APScheduler 3.x.

- Every plan of the plans folder with a `schedule` (5-field cron, UTC) is a job "drill:<id>" in
  the schedule's job store (harness.schedule.jobstore: plain data, never a pickle; SQLite by
  default, PostgreSQL to share one). A row that is not a job of the harness is logged, removed
  and never run. A restart
  keeps each job's stored next run time, so a fire missed while no daemon ran is found due at
  start and handled by the misfire rule (harness.calendar.misfire): one run, "late",
  within the grace; "missed" beyond it; recorded in the ledger and the CAB log, never run twice
  (the ledger's unique (drill, scheduled time)). A job whose cron changed is rescheduled; a job
  whose plan is gone is removed. The pickled table of an older harness is rebuilt from the
  plans when a daemon starts leading (each rebuilt job keeps its next run time, read from the
  table's plain column), then dropped; its queued triggers are dropped and said so.
- APScheduler hands every due run time to DrillExecutor (coalescing and grace are off in
  APScheduler: the harness's rule decides, with all the times in hand).
- Each run is a `drill run` child process (one lab each) writing to
  reports/out/<drill>/<scheduled time>/ and the CAB log; at most --max-parallel at a time on this
  host (a lock file per slot in the state folder, held by the child too): a run waits for a
  slot and says so.
- A run whose scheduled time falls in a blackout window is skipped and recorded with the reason.
- `drill schedule trigger` adds a one-off job ("trigger:<id>:<n>") to the store; the leader sees
  it at its next poll.
- With --backup FILE: the daily LastBackupAge check and the weekly verify of that deployment's
  own backups, read from its tool (harness.schedule.backup_jobs; the harness takes no backup); a
  fail or an unknown is an ALERT line and a CAB log record.
- Daily at 07:00 UTC (and at start): the staleness check, an alert line per HA domain with no
  passing drill of a counted class (--count: staging and production by default) in the last quarter.
- Leadership (harness.schedule.store): only the lock holder schedules; the others poll every
  `poll_s` and take over when it is free. A leader that loses its lock stops scheduling.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy.engine import URL

from ..cab.ledger import append_cab_record, key_or_none, verified_entries
from ..calendar import (
    DEFAULT_GRACE_S,
    STALE_AFTER_DAYS,
    Blackout,
    blackout_at,
    cron_trigger,
    domain_states,
    misfire,
    parse_blackouts,
)
from ..environments import DEFAULT_COUNT, lab_warning
from ..errors import PlanError
from ..lab import reaper
from ..plan import Plan, load_plan, read_yaml
from .backup_jobs import JOBS as BACKUP_JOBS
from .backup_jobs import load_backup_target, run_backup_job
from .jobstore import PlainJobStore, drop_pickled_table, fire, read_pickled_table
from .store import (
    EXIT_STATUS,
    PICKLED_JOBS_TABLE,
    Ledger,
    engine,
    identity,
    iso,
    leadership,
    now_utc,
    shown,
    store_url,
    tolerate_create_race,
)

STALENESS_CRON = "0 7 * * *"
UTC = dt.UTC


def load_plans(folder: Path, root: Path) -> tuple[dict[str, Plan], list[str]]:
    """Every plan of `folder` by drill id, and every error (all files, not the first only)."""
    plans: dict[str, Plan] = {}
    errors: list[str] = []
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not folder.is_dir():
        return {}, [f"{folder}: no such plans folder (--plans)"]
    for path in files:
        try:
            plan = load_plan(path, root=root)
        except PlanError as exc:
            errors.append(str(exc))
            continue
        if plan.drill in plans:
            errors.append(
                f"{path}: key 'drill': {plan.drill!r} is also the id of {plans[plan.drill].path}; "
                f"every plan needs its own id"
            )
            continue
        plans[plan.drill] = plan
    return plans, errors


def load_blackout_file(path: Path | None) -> tuple[Blackout, ...]:
    """A calendar file of blackout windows: YAML `blackout: [{start, end, reason}, ...]`."""
    if path is None:
        return ()

    def fail(key: str, message: str) -> PlanError:
        return PlanError(f"{path}: key '{key}': {message}")

    data = read_yaml(path, "no such blackout calendar (--blackout-file)")
    if not isinstance(data, dict) or set(data) != {"blackout"}:
        raise PlanError(
            f"{path}: a blackout calendar is a mapping with one key, blackout: a list of {{start, end, reason}}"
        )
    return parse_blackouts(data["blackout"], fail)


class Slots:
    """At most `count` drills at a time on this host: slot i is an flock on a file in the state
    folder, held by the daemon and inherited by the drill's process (so a slot stays taken while
    a drill runs on after its daemon died)."""

    def __init__(self, count: int, folder: Path | None = None):
        self.count = count
        self.folder = folder or reaper.state_dir() / "run-slots"

    def try_take(self) -> int | None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for i in range(self.count):
            fd = os.open(self.folder / f"slot-{i}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        return None


@dataclass
class Launch:
    """What the daemon starts for one run: `drill run PLAN --out DIR --cab-log FILE`."""

    plan: Plan
    out_dir: Path
    cab_log: Path
    slot_fd: int


def run_child(launch: Launch, root: Path, children: set, lock: threading.Lock) -> int:
    """The drill as its own `drill run` process; its output in <out>/drill.log."""
    launch.out_dir.mkdir(parents=True, exist_ok=True)
    with open(launch.out_dir / "drill.log", "wb") as log:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.cli",
                "run",
                str(launch.plan.path),
                "--out",
                str(launch.out_dir),
                "--cab-log",
                str(launch.cab_log),
            ],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            pass_fds=(launch.slot_fd,),
        )
        with lock:
            children.add(child)
        try:
            return child.wait()
        finally:
            with lock:
                children.discard(child)


class DrillExecutor(BaseExecutor):
    """APScheduler executor: hands each due job, with all its due run times, to the daemon."""

    def __init__(self, daemon: Daemon):
        super().__init__()
        self.daemon = daemon
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="drill-job")

    def _do_submit_job(self, job, run_times):
        future = self.pool.submit(self.daemon.fire, job.id, list(job.args), list(run_times))

        def done(f):
            if f.exception() is None:
                self._run_job_success(job.id, [])
            else:
                self._run_job_error(job.id, f.exception())

        future.add_done_callback(done)

    def shutdown(self, wait=True):
        self.pool.shutdown(wait=wait, cancel_futures=not wait)


@dataclass
class Daemon:
    plans_dir: Path
    store: str | None = None
    cab_log: Path = Path("reports/cab-log.jsonl")
    out_root: Path = Path("reports/out")
    root: Path = field(default_factory=Path.cwd)
    max_parallel: int = 1
    grace_s: float = DEFAULT_GRACE_S
    blackout_file: Path | None = None
    stale_days: float = STALE_AFTER_DAYS
    poll_s: float = 2.0
    log: Callable[[str], None] = lambda line: print(
        f"{now_utc():%Y-%m-%dT%H:%M:%SZ} {line}", file=sys.stderr, flush=True
    )
    # how a run is started (default: a `drill run` child process); returns its exit code
    launcher: Callable[[Launch], int] | None = None
    now: Callable[[], dt.datetime] = now_utc
    backup_file: Path | None = None  # --backup: the deployment whose backup jobs run (backup_jobs)
    count: tuple[str, ...] = DEFAULT_COUNT  # --count: environment classes that make a domain current

    def __post_init__(self) -> None:
        self.url = store_url(self.store)
        self.plans, errors = load_plans(self.plans_dir, self.root)
        if errors:
            raise PlanError("\n".join(errors))
        self.blackouts = load_blackout_file(self.blackout_file)
        self.backup = load_backup_target(self.backup_file) if self.backup_file else None
        self.engine = engine(self.url)
        self.ledger = Ledger(self.engine)
        self.slots = Slots(self.max_parallel)
        self.lock = leadership(self.url)
        self.scheduler: BackgroundScheduler | None = None
        self.leader_since: dt.datetime | None = None
        self.children: set[subprocess.Popen] = set()
        self._children_lock = threading.Lock()
        self.stopping = threading.Event()

    # -- leadership and the main loop ---------------------------------------------------------
    def serve(self, stop: threading.Event) -> None:
        """Until `stop`: hold or wait for leadership; while leader, schedule and keep a heartbeat."""
        self.log(
            f"schedule: {len(self.plans)} plans from {self.plans_dir}, store {shown(self.url)}, "
            f"at most {self.max_parallel} drill(s) at a time on this host"
        )
        waiting_said, trouble = False, None
        try:
            while not stop.is_set():
                try:
                    waiting_said = self._tick(waiting_said)
                    if trouble is not None:
                        self.log("schedule: the store answers again")
                        trouble = None
                except Exception as exc:  # noqa: BLE001 - the store may be down a while: retry, say so once
                    if trouble is None:
                        self.log(
                            f"schedule: the store does not answer ({type(exc).__name__}); retrying every "
                            f"{self.poll_s:g} s"
                        )
                    trouble = exc
                    if self.scheduler is not None and not self.lock.holding():
                        self._step_down()
                stop.wait(self.poll_s)
        finally:
            self.stopping.set()
            self._step_down()
            self._stop_children()

    def _tick(self, waiting_said: bool) -> bool:
        """One poll: lead when the lock is free; as leader, keep the heartbeat and look at the store."""
        if self.scheduler is None:
            if self.lock.try_acquire():
                self._lead()
            elif not waiting_said:
                holder = self.ledger.leader()
                self.log(
                    f"schedule: standby; {holder['holder'] if holder else 'another daemon'} "
                    f"schedules; taking over when it stops"
                )
                return True
        elif not self.lock.holding():
            self.log("schedule: lost the leader lock; stopping scheduling (another daemon may lead)")
            self._step_down()
        else:
            self.ledger.heartbeat(identity(), self.leader_since or now_utc())  # set by _lead()
            self.scheduler.wakeup()  # sees triggers other processes added to the store
        return waiting_said

    def _lead(self) -> None:
        self.leader_since = now_utc()
        self.ledger.heartbeat(identity(), self.leader_since)
        interrupted = self.ledger.interrupted_by_dead(_alive)
        self.log(
            f"schedule: this daemon ({identity()}) schedules now"
            + (f"; {interrupted} run(s) of a stopped daemon marked interrupted" if interrupted else "")
        )
        scheduler = BackgroundScheduler(
            jobstores={"default": PlainJobStore(self.engine, owner=True, log=self.log)},
            executors={"default": DrillExecutor(self)},
            timezone=UTC,
            job_defaults={"coalesce": False, "misfire_grace_time": None, "max_instances": 1000},
        )
        tolerate_create_race(lambda: scheduler.start(paused=True))
        try:
            pickled = read_pickled_table(self.engine)
            kept = self._reconcile(scheduler, dict(pickled or ()))
            if pickled is not None:
                self._migrated(pickled, kept)
        except BaseException:
            scheduler.shutdown(wait=False)
            self.lock.release()
            raise
        self.scheduler = scheduler
        self.check_staleness()
        scheduler.resume()

    def _step_down(self) -> None:
        if self.scheduler is not None:
            try:
                self.scheduler.shutdown(wait=False)
            except Exception:  # noqa: BLE001 - already stopped
                pass
            self.scheduler = None
        self.lock.release()

    def _reconcile(
        self, scheduler: BackgroundScheduler, previous: dict[str, dt.datetime | None] | None = None
    ) -> set[str]:
        """The store's jobs made to match the plans, keeping each unchanged job's next run time.
        A job added anew takes its next run time from `previous` (the old pickled table's plain
        column) when that time is one of its cron's fire times; the ids that did, returned."""
        previous = previous or {}
        kept: set[str] = set()

        def add(job_id: str, trigger, args: list[str], name: str) -> None:
            when = previous.get(job_id)
            if when is not None and trigger.get_next_fire_time(None, when) == when:
                scheduler.add_job(fire, trigger, args=args, id=job_id, name=name, next_run_time=when)
                kept.add(job_id)
            else:
                scheduler.add_job(fire, trigger, args=args, id=job_id, name=name)

        existing = {job.id: job for job in scheduler.get_jobs()}
        for drill, plan in sorted(self.plans.items()):
            if not plan.schedule:
                continue
            job_id, trigger = f"drill:{drill}", cron_trigger(plan.schedule)
            job = existing.get(job_id)
            if job is None:
                add(job_id, trigger, ["drill", drill], plan.title)
                self.log(f"schedule: {drill} added: '{plan.schedule}' UTC")
            elif str(job.trigger) != str(trigger):
                scheduler.reschedule_job(job_id, trigger=trigger)
                self.log(f"schedule: {drill} rescheduled: '{plan.schedule}' UTC")
        for job_id in existing:
            kind, _, drill = job_id.partition(":")
            if kind == "drill" and (drill not in self.plans or not self.plans[drill].schedule):
                scheduler.remove_job(job_id)
                self.log(f"schedule: {drill} removed: its plan is gone or has no schedule")
        for job_id, cron in BACKUP_JOBS.items():
            if self.backup is not None and job_id not in existing:
                add(job_id, cron_trigger(cron), ["backup", job_id], f"{job_id} of {self.backup.path}")
            elif self.backup is None and job_id in existing:
                scheduler.remove_job(job_id)
                self.log(f"schedule: {job_id} removed: no --backup target given")
        if "staleness" not in existing:
            add(
                "staleness",
                cron_trigger(STALENESS_CRON),
                ["staleness"],
                "HA domains without a passing drill in the last quarter",
            )
        return kept

    def _migrated(self, pickled: list[tuple[str, dt.datetime | None]], kept: set[str]) -> None:
        """The old table (pickled jobs, never unpickled) dropped, its rows accounted for in the log."""
        drop_pickled_table(self.engine)
        triggers = [job_id for job_id, _ in pickled if job_id.startswith("trigger:")]
        others = [job_id for job_id, _ in pickled if job_id not in kept and not job_id.startswith("trigger:")]
        self.log(
            f"schedule: the job table {PICKLED_JOBS_TABLE} of an older harness (pickled jobs) was rebuilt "
            f"from the plans without unpickling it, and dropped: {len(kept)} job(s) kept their next run "
            f"time"
            + (
                f"; {len(others)} other row(s) rebuilt afresh or gone with their plan: {', '.join(others)}"
                if others
                else ""
            )
        )
        if triggers:
            self.log(
                f"schedule: queued trigger(s) of the old table dropped, never run (their rows cannot be "
                f"trusted): {', '.join(triggers)}; queue them again with `drill schedule trigger`"
            )

    # -- jobs ---------------------------------------------------------------------------------
    def fire(self, job_id: str, args: list[str], run_times: list[dt.datetime]) -> None:
        kind = args[0]
        if kind == "staleness":
            self.check_staleness()
        elif kind == "backup" or (kind == "trigger" and args[1] in BACKUP_JOBS):
            self.backup_job(args[1], run_times, "backup" if kind == "backup" else "trigger")
        elif kind in ("drill", "trigger"):
            self.scheduled(args[1], run_times, kind="calendar" if kind == "drill" else "trigger")
        else:
            self.log(f"schedule: job {job_id} of unknown kind {kind!r} ignored")

    def scheduled(self, drill: str, run_times: list[dt.datetime], kind: str = "calendar") -> str:
        """Apply the misfire rule and the blackout windows, claim the time, run; the run's status."""
        now = self.now()
        decision = misfire(run_times, now, self.grace_s)
        for when in decision.coalesced:  # only beside a run: run_at is set
            self.ledger.claim(
                drill, when, kind, status="coalesced", reason=f"folded into the run for {iso(decision.run_at or when)}"
            )
        for when in decision.missed:
            reason = (
                f"no daemon ran it within the grace of {self.grace_s / 3600:g} h "
                f"(found {(now - when).total_seconds() / 3600:.1f} h late)"
            )
            if self.ledger.claim(drill, when, kind, status="missed", reason=reason):
                self._cab(drill, "missed", when, reason)
                self.log(f"schedule: {drill} run of {iso(when)} MISSED: {reason}")
        if decision.run_at is None:
            return "missed"
        when = decision.run_at
        plan = self.plans.get(drill)
        if plan is None:
            self.log(f"schedule: {drill}: no plan with this id in {self.plans_dir}; nothing run")
            self.ledger.claim(drill, when, kind, status="invalid", reason="no plan with this id")
            return "invalid"
        window = blackout_at(when, (*plan.blackout, *self.blackouts)) if kind == "calendar" else None
        if window is not None:
            if self.ledger.claim(drill, when, kind, status="skipped", reason=window.describe()):
                self._cab(drill, "skipped", when, window.describe())
                self.log(f"schedule: {drill} run of {iso(when)} SKIPPED: {window.describe()}")
            return "skipped"
        out_dir = self.out_root / drill / when.strftime("%Y%m%dT%H%M%SZ")
        if not self.ledger.claim(drill, when, kind, late_s=round(decision.late_s, 1), out_dir=str(out_dir)):
            self.log(f"schedule: {drill} run of {iso(when)} already recorded in the ledger; not run again")
            return "duplicate"
        if decision.late:
            reason = f"started {decision.late_s:.0f} s after its time (the daemon was down), within the grace"
            self._cab(drill, "late", when, reason, late_s=round(decision.late_s, 1))
            self.log(f"schedule: {drill} run of {iso(when)} LATE: {reason}")
        return self._run(plan, when, out_dir)

    def backup_job(self, job: str, run_times: list[dt.datetime], kind: str = "backup") -> str:
        """One backup job for the newest due time (a check run late stands for the ones missed); a
        fail or an unknown (the repository could not be read) is an ALERT line and a CAB log record."""
        when = max(run_times)
        if self.backup is None:
            self.log(f"schedule: {job}: no --backup target given to this daemon; nothing run")
            return "invalid"
        if not self.ledger.claim(job, when, kind):
            return "duplicate"
        status, detail = run_backup_job(job, self.backup)
        self.ledger.finish(job, when, status, reason=detail)
        if status == "pass":
            self.log(f"schedule: {job}: {detail}")
        elif status == "unknown":
            self.log(f"ALERT: {job} unknown: {detail}")
            self._cab(job, "backup_unknown", when, detail)
        else:
            self.log(f"ALERT: {job} failed: {detail}")
            self._cab(job, "backup_failed", when, detail)
        return status

    def _run(self, plan: Plan, when: dt.datetime, out_dir: Path) -> str:
        slot = self._take_slot(plan.drill)
        if slot is None:
            self.ledger.finish(plan.drill, when, "interrupted", reason="the daemon stopped before a slot was free")
            return "interrupted"
        started = time.monotonic()
        self.log(f"schedule: {plan.drill} (scheduled {iso(when)}) starts: {out_dir}")
        try:
            launch = Launch(plan, out_dir, self.cab_log, slot)
            code = (self.launcher or (lambda it: run_child(it, self.root, self.children, self._children_lock)))(launch)
        except Exception as exc:  # noqa: BLE001 - recorded, the daemon goes on
            self.ledger.finish(plan.drill, when, "unknown", reason=f"could not start: {type(exc).__name__}: {exc}")
            self.log(f"schedule: {plan.drill} could not start: {type(exc).__name__}: {exc}")
            return "unknown"
        finally:
            os.close(slot)
        status = "interrupted" if self.stopping.is_set() and code not in (0, 1) else EXIT_STATUS.get(code, "unknown")
        self.ledger.finish(plan.drill, when, status, exit_code=code)
        self.log(
            f"schedule: {plan.drill} (scheduled {iso(when)}) {status.upper()} (exit {code}) in "
            f"{time.monotonic() - started:.0f} s; report {out_dir / 'report.html'}"
        )
        return status

    def _take_slot(self, drill: str) -> int | None:
        said = False
        while not self.stopping.is_set():
            slot = self.slots.try_take()
            if slot is not None:
                return slot
            if not said:
                self.log(
                    f"schedule: {drill} waits: {self.max_parallel} drill(s) already run on this host "
                    f"(--max-parallel {self.max_parallel})"
                )
                said = True
            self.stopping.wait(1.0)
        return None

    def _cab(self, drill: str, event: str, when: dt.datetime, reason: str, **extra) -> None:
        plan = self.plans.get(drill)
        append_cab_record(
            self.cab_log,
            {
                "kind": "schedule",
                "event": event,
                "drill": drill,
                "ha_domain": plan.ha_domain if plan else None,
                "scheduled_for": iso(when),
                "recorded_at": iso(now_utc()),
                "reason": reason,
                **extra,
            },
        )

    def check_staleness(self) -> list[str]:
        """An alert line per stale HA domain (see calendar.domain_states): only runs of the classes
        of --count make a domain current; when they include lab, the warning comes first."""
        entries, _ = verified_entries(self.cab_log, key_or_none())  # a forged pass hides nothing
        states = domain_states(entries, self.domain_of, self.now(), self.stale_days, count=self.count)
        warning = lab_warning(self.count)
        if warning:
            self.log(warning)
        alerts = [s.alert(self.stale_days) for s in states if s.stale]
        for line in alerts:
            self.log(line)
        return alerts

    def domain_of(self, drill: str) -> str | None:
        plan = self.plans.get(drill)
        return plan.ha_domain if plan else None

    def _stop_children(self) -> None:
        """Running drills are interrupted like Ctrl-C: they heal their faults and take the lab down."""
        import signal

        with self._children_lock:
            children = list(self.children)
        for child in children:
            try:
                child.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
        for child in children:
            try:
                child.wait(timeout=90)
            except subprocess.TimeoutExpired:
                child.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- what other processes do through the store ------------------------------------------------


def open_store(store: str | URL | None) -> tuple[PlainJobStore, Ledger]:
    """The job store itself (read and add jobs; no scheduler runs here, so nothing is run or
    removed by this process: an unreadable row is kept in `jobstore.unreadable`) and its ledger.
    StoreInvalid or StoreUnreachable when the store cannot be used."""
    url = store if isinstance(store, URL) else store_url(store)
    eng = engine(url)
    jobstore = PlainJobStore(eng)
    # never started: the scheduler only gives the jobs built here their time zone
    tolerate_create_race(lambda: jobstore.start(BackgroundScheduler(timezone=UTC), "default"))
    return jobstore, Ledger(eng)


def add_trigger(jobstore: PlainJobStore, drill: str, when: dt.datetime) -> str:
    """A one-off job that runs `drill` now, written to the store for the leader to pick up."""
    job_id = f"trigger:{drill}:{when:%Y%m%dT%H%M%S%fZ}"
    jobstore.add_job(
        Job(
            jobstore._scheduler,
            id=job_id,
            func=fire,
            args=("trigger", drill),
            kwargs={},
            trigger=DateTrigger(run_date=when, timezone=UTC),
            executor="default",
            name=f"{drill} (triggered)",
            misfire_grace_time=None,
            coalesce=False,
            max_instances=1000,
            next_run_time=when,
        )
    )
    return job_id
