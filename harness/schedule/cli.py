"""`drill schedule run | list | status | trigger`.

Exit codes: 0 done; 1 an alert (status) or a triggered run that failed or did not finish; 2 invalid
input (a flag, a plan, the store URL, a store file that is not a SQLite database, a job row that is
not a job of the harness: each named with the fix); 4 the store does not answer (after one connect
timeout, harness.schedule.store.CONNECT_TIMEOUT_S); a triggered run with --wait: its own exit code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import exits
from ..cab.ledger import key_or_none, verified_entries
from ..calendar import DEFAULT_GRACE_S, STALE_AFTER_DAYS, cron_trigger, domain_states
from ..environments import add_count_arg, count_words, lab_warning
from ..errors import PlanError
from ..inputs import printable
from .backup_jobs import JOBS as BACKUP_JOBS
from .daemon import Daemon, add_trigger, load_plans, open_store
from .jobstore import has_pickled_table
from .store import JOBS_TABLE, PICKLED_JOBS_TABLE, StoreUnreachable, iso, now_utc, store_errors, store_url

EXIT_OK, EXIT_ALERT, EXIT_INVALID, EXIT_UNREACHABLE = exits.PASS, exits.FAIL, exits.INVALID, exits.UNREACHABLE
HEARTBEAT_STALE_S = 30.0


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _cab_log(args) -> Path:
    import os

    return Path(args.cab_log or os.environ.get("DRILL_CAB_LOG") or Path("reports") / "cab-log.jsonl")


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command whose bad input (a plan, the store URL or file: PlanError, ValueError) is one line
    and exit 2, and whose store not answering is one line and exit 4; never a traceback."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except StoreUnreachable as exc:
            _err(f"drill schedule: {exc}")
            return EXIT_UNREACHABLE
        except (PlanError, ValueError) as exc:
            _err(f"drill schedule: {exc}")
            return EXIT_INVALID

    guarded.__name__ = command.__name__
    return guarded


@_guarded
def run(args: argparse.Namespace) -> int:
    # a store that does not answer at start is exit 4 (Daemon() opens it); one that goes away later
    # is retried every --poll while the daemon runs (Daemon.serve)
    daemon = Daemon(
        Path(args.plans),
        store=args.store,
        cab_log=_cab_log(args),
        out_root=Path(args.out),
        max_parallel=args.max_parallel,
        grace_s=args.grace_hours * 3600,
        blackout_file=Path(args.blackout_file) if args.blackout_file else None,
        stale_days=args.stale_days,
        poll_s=args.poll,
        backup_file=Path(args.backup) if args.backup else None,
        count=args.count,
    )
    stop = threading.Event()

    def request_stop(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    daemon.serve(stop)
    _err("drill schedule: stopped")
    return EXIT_OK


def _local(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone().isoformat(timespec="minutes")


def _plain(value: Any) -> Any:
    """A value read from the store, as JSON and a terminal can take it (a forged row may hold bytes)."""
    return value if value is None or isinstance(value, (str, int, float)) else repr(value)


def heartbeat_age(leader: dict[str, Any] | None, now: dt.datetime) -> tuple[float | None, str | None]:
    """(seconds since the leader's heartbeat, None), or (None, why it cannot be read): a value that
    is not a UTC time, or one more than HEARTBEAT_STALE_S in the future. An unreadable heartbeat
    counts as none (status: an alert); the leading daemon rewrites it at its next poll."""
    if leader is None:
        return None, None
    raw = leader.get("heartbeat")
    try:
        when = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        return None, f"{printable(repr(_plain(raw)), 60)} is not a UTC time"
    age = (now - when).total_seconds()
    if age < -HEARTBEAT_STALE_S:
        return None, f"{printable(raw, 60)} is in the future"
    return age, None


def _open(args: argparse.Namespace):
    """(plans, plan errors, job store, ledger, each HA domain's state)."""
    plans, errors = load_plans(Path(args.plans), Path.cwd())
    jobstore, ledger = open_store(store_url(args.store))
    states = domain_states(
        verified_entries(_cab_log(args), key_or_none())[0],
        lambda d: plans[d].ha_domain if d in plans else None,
        now_utc(),
        args.stale_days,
        count=args.count,
    )
    return plans, errors, jobstore, ledger, states


def _store_rows_said(jobstore) -> int:
    """Every job row that is not a job of the harness (never run) named on stderr; the old pickled
    table noted. EXIT_INVALID when a row was unreadable, else EXIT_OK."""
    if has_pickled_table(jobstore.engine):
        _err(
            f"drill schedule: the store still has the job table {PICKLED_JOBS_TABLE} of an older harness "
            f"(pickled jobs): it is never read; `drill schedule run` rebuilds the jobs from the plans and drops it"
        )
    for job_id, reason in sorted(jobstore.unreadable.items()):
        _err(
            f"drill schedule: job row '{job_id}' of table {JOBS_TABLE} skipped, never run: {reason}; the "
            f"leading daemon removes it (when it starts, or when the row falls due) and rebuilds the plans' "
            f"jobs, or delete the row"
        )
    return EXIT_INVALID if jobstore.unreadable else EXIT_OK


@_guarded
def list_jobs(args: argparse.Namespace) -> int:
    with store_errors(store_url(args.store)):
        plans, errors, jobstore, ledger, domains = _open(args)
        rows = _list_rows(args, plans, jobstore, ledger, domains)
    warning = lab_warning(args.count)
    if args.json:
        print(
            json.dumps(
                {
                    "jobs": rows,
                    "plan_errors": errors,
                    "count": list(args.count),
                    "lab_runs_counted": warning is not None,
                    "warning": warning,
                    "unreadable_rows": [
                        {"job": job_id, "reason": reason} for job_id, reason in sorted(jobstore.unreadable.items())
                    ],
                },
                indent=1,
            )
        )
    else:
        if warning:
            print(warning)
        if not rows:
            print(f"no scheduled plan in {printable(args.plans)} and no job in the store")
        for r in rows:
            last = r["last_result"]
            done = printable(f"{last['status']} {last['scheduled_for']}") if last else "never run"
            print(
                f"{printable(r['drill'] or r['job']):30} next {r['next_run_utc'] or '-':25} "
                f"(local {r['next_run_local'] or '-'})"
                f"{'' if r['in_store'] else ' [not in the store yet: start `drill schedule run`]'}"
            )
            print(
                f"{'':30} last {done}"
                f"{'  OVERDUE: ' + printable(r['overdue_reason']) if r['overdue'] else ''}"
                f"{_counted_text(r) if r['drill'] else ''}"
                f"{'  queued triggers: ' + str(len(r['triggers_queued'])) if r['triggers_queued'] else ''}"
            )
        for e in errors:
            _err(f"drill schedule: plan skipped: {e}")
    return _store_rows_said(jobstore)


def _counted_text(row: dict[str, Any]) -> str:
    """The last counted pass of each domain of a plan's row, with its class."""
    parts = [
        f"{d}: {v['drill']} {v['finished_at'][:10]} ({v['class']})" if v["drill"] else f"{d}: none"
        for d, v in sorted(row.get("last_counted", {}).items())
    ]
    return printable("  last counted pass: " + "; ".join(parts)) if parts else ""


def _list_rows(args, plans, jobstore, ledger, domains) -> list[dict[str, Any]]:
    jobs = {job.id: job for job in jobstore.get_all_jobs()}
    now = now_utc()
    states = {s.domain: s for s in domains}

    def last_of(job_id: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
        last = ledger.last(job_id)
        return last and {k: _plain(last[k]) for k in keys}

    rows = []
    drills = sorted(
        {job_id.split(":")[1] for job_id in jobs if job_id.startswith("drill:")}
        | {job_id.split(":")[1] for job_id in jobs if job_id.startswith("trigger:") and job_id.split(":")[1] in plans}
        | {d for d, p in plans.items() if p.schedule}
    )
    for drill in drills:
        job = jobs.get(f"drill:{drill}")
        plan = plans.get(drill)
        next_run = job.next_run_time if job else None
        in_store = job is not None
        if job is None and plan is not None and plan.schedule:
            next_run = cron_trigger(plan.schedule).get_next_fire_time(None, now)
        last = last_of(drill, ("scheduled_for", "status", "exit_code", "late_s", "reason", "out_dir"))
        domain = plan.ha_domain if plan else None
        stale_domains = [
            s.domain + ("" if s.uncounted is None else f" (a newer {s.uncounted[2]} run, not counted)")
            for s in states.values()
            if s.stale and domain in (s.domain, "all")
        ]
        late = next_run is not None and next_run < now
        rows.append(
            {
                "job": f"drill:{drill}",
                "drill": drill,
                "ha_domain": domain,
                "schedule": plan.schedule if plan else None,
                "in_store": in_store,
                "next_run_utc": iso(next_run) if next_run else None,
                "next_run_local": _local(next_run),
                "last_result": last,
                "overdue": bool(stale_domains or late),
                "overdue_reason": (
                    "the next run is in the past: no daemon is running it"
                    if late
                    else f"no passing drill of class {count_words(args.count)} in the last "
                    f"{args.stale_days:g} days: {', '.join(stale_domains)}"
                    if stale_domains
                    else None
                ),
                "last_counted": {
                    s.domain: {
                        "drill": s.last_drill,
                        "class": s.last_class,
                        "finished_at": iso(s.last_pass) if s.last_pass else None,
                    }
                    for s in states.values()
                    if domain in (s.domain, "all")
                }
                if domain
                else {},
                "triggers_queued": sorted(j for j in jobs if j.startswith(f"trigger:{drill}:")),
            }
        )
    for job_id in sorted(j for j in jobs if not j.startswith(("drill:", "trigger:"))):
        job, last = jobs[job_id], last_of(job_id, ("scheduled_for", "status", "reason"))
        late = job.next_run_time is not None and job.next_run_time < now
        rows.append(
            {
                "job": job_id,
                "drill": None,
                "ha_domain": None,
                "schedule": str(job.trigger),
                "in_store": True,
                "next_run_utc": iso(job.next_run_time) if job.next_run_time else None,
                "next_run_local": _local(job.next_run_time),
                "last_result": last,
                "overdue": late or bool(last and last["status"] == "fail"),
                "overdue_reason": "the next run is in the past: no daemon is running it"
                if late
                else (last["reason"] if last and last["status"] == "fail" else None),
                "triggers_queued": sorted(j for j in jobs if j.startswith(f"trigger:{job_id}:")),
            }
        )
    return rows


@_guarded
def status(args: argparse.Namespace) -> int:
    with store_errors(store_url(args.store)):
        _, _, jobstore, ledger, states = _open(args)
        jobstore.get_all_jobs()  # every job row read: an unreadable one is reported below
        leader = ledger.leader()
    now = now_utc()
    leader = leader and {k: _plain(v) for k, v in leader.items()}
    age, unreadable = heartbeat_age(leader, now)
    alive = age is not None and age <= HEARTBEAT_STALE_S
    stale = [s for s in states if s.stale]
    no_daemon = (
        f"ALERT: the leader's heartbeat in the store is unreadable ({unreadable}): no daemon is known to "
        f"schedule (a leading daemon writes it again at its next poll)"
        if unreadable
        else f"ALERT: no schedule daemon has a heartbeat in the last {HEARTBEAT_STALE_S:.0f} s: "
        f"nothing is being scheduled"
    )
    warning = lab_warning(args.count)
    report: dict[str, Any]
    report = {
        "leader": leader
        and {
            **leader,
            "heartbeat_age_s": None if age is None else round(age, 1),
            "alive": alive,
            "heartbeat_unreadable": unreadable,
        },
        "count": list(args.count),
        "lab_runs_counted": warning is not None,
        "warning": warning,
        "domains": [
            {
                "domain": s.domain,
                "last_pass": iso(s.last_pass) if s.last_pass else None,
                "last_drill": s.last_drill,
                "last_class": s.last_class,
                "stale": s.stale,
                "newer_uncounted": None
                if s.uncounted is None
                else {"finished_at": iso(s.uncounted[0]), "drill": s.uncounted[1], "class": s.uncounted[2]},
            }
            for s in states
        ],
        "alerts": [s.alert(args.stale_days) for s in stale] + ([] if alive else [no_daemon]),
        "unreadable_rows": [
            {"job": job_id, "reason": reason} for job_id, reason in sorted(jobstore.unreadable.items())
        ],
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        if leader is None:
            print("leader: none has ever run on this store")
        else:
            beat = f"heartbeat {age:.0f} s ago" if age is not None else f"heartbeat unreadable ({unreadable})"
            print(f"leader: {printable(leader['holder'], 140)} since {printable(leader['since'], 40)}, {beat}")
        if warning:
            print(warning)
        print(f"counted: runs of class {count_words(args.count)} (--count {','.join(args.count)})")
        for s in states:
            last = f"{s.last_drill} at {iso(s.last_pass)} ({s.last_class})" if s.last_pass else "never"
            rehearsal = (
                ""
                if s.uncounted is None
                else f"  (newer, not counted: {s.uncounted[1]} at {iso(s.uncounted[0])} ({s.uncounted[2]}))"
            )
            print(
                f"  {s.domain:15} last passing drill: {printable(last)}{'  STALE' if s.stale else ''}"
                f"{printable(rehearsal)}"
            )
        for line in report["alerts"]:
            print(line)
    if _store_rows_said(jobstore) == EXIT_INVALID:
        return EXIT_INVALID
    return EXIT_ALERT if report["alerts"] else EXIT_OK


@_guarded
def trigger(args: argparse.Namespace) -> int:
    plans, _ = load_plans(Path(args.plans), Path.cwd())
    if args.drill not in plans and args.drill not in BACKUP_JOBS:
        known = ", ".join(sorted(plans)) or "none"
        raise ValueError(
            f"no plan with drill id '{printable(args.drill, 80)}' in {printable(args.plans)} "
            f"(known: {known}; or a backup job: {', '.join(BACKUP_JOBS)})"
        )
    with store_errors(store_url(args.store)):
        return _trigger(args)


def _trigger(args: argparse.Namespace) -> int:
    jobstore, ledger = open_store(store_url(args.store))
    when = now_utc()
    job_id = add_trigger(jobstore, args.drill, when)
    leader = ledger.leader()
    age, unreadable = heartbeat_age(leader, now_utc())
    if age is None or age > HEARTBEAT_STALE_S:
        why = (
            f"the leader's heartbeat is unreadable ({unreadable})"
            if unreadable
            else f"no daemon has a heartbeat in the last {HEARTBEAT_STALE_S:.0f} s"
        )
        _err(f"drill schedule: queued {job_id}, but {why}: it runs when `drill schedule run` starts on this store")
    else:
        holder = leader["holder"] if leader is not None else "?"  # a heartbeat age: there is a leader
        _err(f"drill schedule: queued {job_id}; daemon {printable(holder, 140)} runs it")
    if not args.wait:
        return EXIT_OK
    key = iso(when)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        row = next((r for r in ledger.runs(args.drill) if r["scheduled_for"] == key), None)
        if row is not None and row["status"] != "running":
            print(
                json.dumps(
                    {k: _plain(row[k]) for k in ("drill", "scheduled_for", "status", "exit_code", "out_dir", "reason")}
                )
            )
            if isinstance(row["exit_code"], int) and 0 <= row["exit_code"] <= 255:
                return row["exit_code"]
            return EXIT_OK if row["status"] == "pass" else EXIT_ALERT
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    _err(f"drill schedule: {job_id} not finished within {args.timeout:g} s")
    return EXIT_ALERT


def _number(what: str, low: float, high: float, low_open: bool = False, whole: bool = False):
    """An argparse type: a finite number in [low, high] ((low, high] with low_open), else exit 2
    naming the flag's value and the range."""

    def shown(x: float) -> str:
        return str(int(x)) if x == int(x) else f"{x:g}"

    bounds = f"{'>' if low_open else '>='} {shown(low)} and <= {shown(high)}"

    def parse(text: str):
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{printable(text, 40)!r} is not a {'whole ' if whole else ''}number; give {what} {bounds}"
            ) from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            raise argparse.ArgumentTypeError(f"{printable(text, 40)!r}: give {what} {bounds}")
        return value

    return parse


def add_parser(sub) -> None:
    schedule = sub.add_parser("schedule", help="the quarterly drill schedule (a daemon on APScheduler)")
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION")
    actions.required = True

    def common(p, cab: bool = True):
        p.add_argument("--plans", default="drills", help="folder of drill plans (default drills/)")
        p.add_argument(
            "--store",
            help="job store URL: sqlite:///FILE (default $DRILL_SCHEDULE_STORE or "
            "sqlite:///reports/schedule.sqlite) or postgresql://USER@HOST:PORT/DB "
            "(password from PGPASSWORD or ~/.pgpass)",
        )
        if cab:
            p.add_argument("--cab-log", help="CAB log (default $DRILL_CAB_LOG or reports/cab-log.jsonl)")
            p.add_argument(
                "--stale-days",
                type=_number("days", 0, 36600, low_open=True),
                default=STALE_AFTER_DAYS,
                help=f"an HA domain with no passing drill for this long is overdue (default {STALE_AFTER_DAYS:g})",
            )
            add_count_arg(p)

    p = actions.add_parser("run", help="the daemon: schedules every plan by its cron until stopped")
    common(p)
    p.add_argument("--out", default="reports/out", help="runs write to OUT/<drill>/<time>/ (default reports/out)")
    p.add_argument(
        "--max-parallel",
        type=_number("drills", 1, 64, whole=True),
        default=1,
        help="drills at a time on this host, 1 to 64 (default 1)",
    )
    p.add_argument(
        "--grace-hours",
        type=_number("hours", 0, 8784),
        default=DEFAULT_GRACE_S / 3600,
        help=f"a run found late by at most this runs once, recorded late; later ones are recorded "
        f"missed (default {DEFAULT_GRACE_S / 3600:g})",
    )
    p.add_argument("--blackout-file", help="YAML calendar of change freezes: blackout: [{start, end, reason}]")
    p.add_argument(
        "--backup",
        metavar="FILE",
        help="a deployment's pgBackRest repository (YAML, the keys of lab.backups plus max_age_hours): "
        "schedules the daily LastBackupAge check and the weekly verify, read only",
    )
    p.add_argument(
        "--poll",
        type=_number("seconds", 0.1, 3600),
        default=2.0,
        help="seconds between leader checks, 0.1 to 3600 (default 2)",
    )
    p.set_defaults(func=run)
    p = actions.add_parser("list", help="every job: next run (UTC and local), last result, overdue flag")
    common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_jobs)
    p = actions.add_parser(
        "status",
        help="the leader daemon and each HA domain's last passing drill; "
        "exit 1 when a domain is overdue or no daemon runs",
    )
    common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status)
    p = actions.add_parser("trigger", help="run one drill now, through the daemon's store")
    common(p, cab=False)
    p.add_argument("drill", help="drill id of a plan in --plans")
    p.add_argument("--wait", action="store_true", help="wait for the run and exit with its exit code")
    p.add_argument(
        "--timeout",
        type=_number("seconds", 0, 366 * 86400, low_open=True),
        default=3600,
        help="seconds --wait waits, > 0 (default 3600)",
    )
    p.set_defaults(func=trigger)
