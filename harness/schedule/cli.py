"""`drill schedule run | list | status | trigger`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
import threading
import time
from pathlib import Path

from ..plan import PlanError
from ..report.cab_log import key_or_none, verified_entries
from .backup_jobs import JOBS as BACKUP_JOBS
from .calendar import DEFAULT_GRACE_S, STALE_AFTER_DAYS, cron_trigger, domain_states
from .daemon import Daemon, add_trigger, load_plans, open_store
from .store import iso, now_utc

EXIT_OK, EXIT_ALERT, EXIT_INVALID = 0, 1, 2
HEARTBEAT_STALE_S = 30.0


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _cab_log(args) -> Path:
    import os

    return Path(args.cab_log or os.environ.get("DRILL_CAB_LOG") or Path("reports") / "cab-log.jsonl")


def run(args: argparse.Namespace) -> int:
    try:
        daemon = Daemon(Path(args.plans), store=args.store, cab_log=_cab_log(args), out_root=Path(args.out),
                        max_parallel=args.max_parallel, grace_s=args.grace_hours * 3600,
                        blackout_file=Path(args.blackout_file) if args.blackout_file else None,
                        stale_days=args.stale_days, poll_s=args.poll,
                        backup_file=Path(args.backup) if args.backup else None)
    except (PlanError, ValueError) as exc:
        _err(f"drill schedule: {exc}")
        return EXIT_INVALID
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


def _open(args: argparse.Namespace):
    """(plans, plan errors, job store, ledger, each HA domain's state) or ValueError."""
    plans, errors = load_plans(Path(args.plans), Path.cwd())
    jobstore, ledger = open_store(args.store)
    states = domain_states(verified_entries(_cab_log(args), key_or_none())[0], lambda d: plans[d].ha_domain if d in plans else None,
                           now_utc(), args.stale_days)
    return plans, errors, jobstore, ledger, states


def list_jobs(args: argparse.Namespace) -> int:
    try:
        plans, errors, jobstore, ledger, domains = _open(args)
    except ValueError as exc:
        _err(f"drill schedule: {exc}")
        return EXIT_INVALID
    jobs = {job.id: job for job in jobstore.get_all_jobs()}
    now = now_utc()
    states = {s.domain: s for s in domains}
    rows = []
    drills = sorted({job_id.split(":")[1] for job_id in jobs if job_id.startswith("drill:")}
                    | {job_id.split(":")[1] for job_id in jobs
                       if job_id.startswith("trigger:") and job_id.split(":")[1] in plans}
                    | {d for d, p in plans.items() if p.schedule})
    for drill in drills:
        job = jobs.get(f"drill:{drill}")
        plan = plans.get(drill)
        next_run = job.next_run_time if job else None
        in_store = job is not None
        if job is None and plan is not None and plan.schedule:
            next_run = cron_trigger(plan.schedule).get_next_fire_time(None, now)
        last = ledger.last(drill)
        domain = plan.ha_domain if plan else None
        stale_domains = [s.domain for s in states.values() if s.stale and domain in (s.domain, "all")]
        late = next_run is not None and next_run < now
        rows.append({
            "job": f"drill:{drill}", "drill": drill, "ha_domain": domain,
            "schedule": plan.schedule if plan else None, "in_store": in_store,
            "next_run_utc": iso(next_run) if next_run else None, "next_run_local": _local(next_run),
            "last_result": last and {k: last[k] for k in ("scheduled_for", "status", "exit_code", "late_s",
                                                          "reason", "out_dir")},
            "overdue": bool(stale_domains or late),
            "overdue_reason": ("the next run is in the past: no daemon is running it" if late else
                               f"no passing drill in the last {args.stale_days:g} days: {', '.join(stale_domains)}"
                               if stale_domains else None),
            "triggers_queued": sorted(j for j in jobs if j.startswith(f"trigger:{drill}:")),
        })
    for job_id in sorted(j for j in jobs if not j.startswith(("drill:", "trigger:"))):
        job, last = jobs[job_id], ledger.last(job_id)
        late = job.next_run_time is not None and job.next_run_time < now
        rows.append({"job": job_id, "drill": None, "ha_domain": None, "schedule": str(job.trigger), "in_store": True,
                     "next_run_utc": iso(job.next_run_time) if job.next_run_time else None,
                     "next_run_local": _local(job.next_run_time),
                     "last_result": last and {k: last[k] for k in ("scheduled_for", "status", "reason")},
                     "overdue": late or bool(last and last["status"] == "fail"),
                     "overdue_reason": "the next run is in the past: no daemon is running it" if late else
                     (last["reason"] if last and last["status"] == "fail" else None),
                     "triggers_queued": sorted(j for j in jobs if j.startswith(f"trigger:{job_id}:"))})
    if args.json:
        print(json.dumps({"jobs": rows, "plan_errors": errors}, indent=1))
    else:
        if not rows:
            print(f"no scheduled plan in {args.plans} and no job in the store")
        for r in rows:
            last = r["last_result"]
            print(f"{r['drill'] or r['job']:30} next {r['next_run_utc'] or '-':25} (local {r['next_run_local'] or '-'})"
                  f"{'' if r['in_store'] else ' [not in the store yet: start `drill schedule run`]'}")
            print(f"{'':30} last {(last['status'] + ' ' + last['scheduled_for']) if last else 'never run'}"
                  f"{'  OVERDUE: ' + r['overdue_reason'] if r['overdue'] else ''}"
                  f"{'  queued triggers: ' + str(len(r['triggers_queued'])) if r['triggers_queued'] else ''}")
        for e in errors:
            _err(f"drill schedule: plan skipped: {e}")
    return EXIT_OK


def status(args: argparse.Namespace) -> int:
    try:
        _, _, _, ledger, states = _open(args)
    except ValueError as exc:
        _err(f"drill schedule: {exc}")
        return EXIT_INVALID
    now = now_utc()
    leader = ledger.leader()
    age = None if leader is None else (now - dt.datetime.fromisoformat(leader["heartbeat"])).total_seconds()
    alive = age is not None and age <= HEARTBEAT_STALE_S
    stale = [s for s in states if s.stale]
    report = {"leader": leader and {**leader, "heartbeat_age_s": round(age, 1), "alive": alive},
              "domains": [{"domain": s.domain, "last_pass": iso(s.last_pass) if s.last_pass else None,
                           "last_drill": s.last_drill, "stale": s.stale} for s in states],
              "alerts": [s.alert(args.stale_days) for s in stale] +
                        ([] if alive else ["ALERT: no schedule daemon has a heartbeat in the last "
                                           f"{HEARTBEAT_STALE_S:.0f} s: nothing is being scheduled"])}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"leader: {leader['holder']} since {leader['since']}, heartbeat {age:.0f} s ago"
              if leader else "leader: none has ever run on this store")
        for s in states:
            last = f"{s.last_drill} at {iso(s.last_pass)}" if s.last_pass else "never"
            print(f"  {s.domain:15} last passing drill: {last}{'  STALE' if s.stale else ''}")
        for line in report["alerts"]:
            print(line)
    return EXIT_ALERT if report["alerts"] else EXIT_OK


def trigger(args: argparse.Namespace) -> int:
    try:
        plans, _ = load_plans(Path(args.plans), Path.cwd())
        if args.drill not in plans and args.drill not in BACKUP_JOBS:
            known = ", ".join(sorted(plans)) or "none"
            raise ValueError(f"no plan with drill id {args.drill!r} in {args.plans} (known: {known}; or a "
                             f"backup job: {', '.join(BACKUP_JOBS)})")
        jobstore, ledger = open_store(args.store)
    except ValueError as exc:
        _err(f"drill schedule: {exc}")
        return EXIT_INVALID
    when = now_utc()
    job_id = add_trigger(jobstore, args.drill, when)
    leader = ledger.leader()
    age = None if leader is None else (now_utc() - dt.datetime.fromisoformat(leader["heartbeat"])).total_seconds()
    if age is None or age > HEARTBEAT_STALE_S:
        _err(f"drill schedule: queued {job_id}, but no daemon has a heartbeat in the last {HEARTBEAT_STALE_S:.0f} s: "
             f"it runs when `drill schedule run` starts on this store")
    else:
        _err(f"drill schedule: queued {job_id}; daemon {leader['holder']} runs it")
    if not args.wait:
        return EXIT_OK
    key = iso(when)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        row = next((r for r in ledger.runs(args.drill) if r["scheduled_for"] == key), None)
        if row is not None and row["status"] != "running":
            print(json.dumps({k: row[k] for k in ("drill", "scheduled_for", "status", "exit_code", "out_dir",
                                                  "reason")}))
            if row["exit_code"] is not None:
                return row["exit_code"]
            return EXIT_OK if row["status"] == "pass" else EXIT_ALERT
        time.sleep(1.0)
    _err(f"drill schedule: {job_id} not finished within {args.timeout:.0f} s")
    return EXIT_ALERT


def add_parser(sub) -> None:
    schedule = sub.add_parser("schedule", help="the quarterly drill schedule (a daemon on APScheduler)")
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION")
    actions.required = True

    def common(p, cab: bool = True):
        p.add_argument("--plans", default="drills", help="folder of drill plans (default drills/)")
        p.add_argument("--store", help="job store URL: sqlite:///FILE (default $DRILL_SCHEDULE_STORE or "
                                       "sqlite:///reports/schedule.sqlite) or postgresql://USER@HOST:PORT/DB "
                                       "(password from PGPASSWORD or ~/.pgpass)")
        if cab:
            p.add_argument("--cab-log", help="CAB log (default $DRILL_CAB_LOG or reports/cab-log.jsonl)")
            p.add_argument("--stale-days", type=float, default=STALE_AFTER_DAYS,
                           help=f"an HA domain with no passing drill for this long is overdue "
                                f"(default {STALE_AFTER_DAYS:g})")

    p = actions.add_parser("run", help="the daemon: schedules every plan by its cron until stopped")
    common(p)
    p.add_argument("--out", default="reports/out", help="runs write to OUT/<drill>/<time>/ (default reports/out)")
    p.add_argument("--max-parallel", type=int, default=1, help="drills at a time on this host (default 1)")
    p.add_argument("--grace-hours", type=float, default=DEFAULT_GRACE_S / 3600,
                   help=f"a run found late by at most this runs once, recorded late; later ones are recorded "
                        f"missed (default {DEFAULT_GRACE_S / 3600:g})")
    p.add_argument("--blackout-file", help="YAML calendar of change freezes: blackout: [{start, end, reason}]")
    p.add_argument("--backup", metavar="FILE", help="a deployment's backup target (YAML): schedules its hourly "
                                                    "snapshot and the daily LastBackupAge check")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between leader checks (default 2)")
    p.set_defaults(func=run)
    p = actions.add_parser("list", help="every job: next run (UTC and local), last result, overdue flag")
    common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_jobs)
    p = actions.add_parser("status", help="the leader daemon and each HA domain's last passing drill; "
                                          "exit 1 when a domain is overdue or no daemon runs")
    common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status)
    p = actions.add_parser("trigger", help="run one drill now, through the daemon's store")
    common(p, cab=False)
    p.add_argument("drill", help="drill id of a plan in --plans")
    p.add_argument("--wait", action="store_true", help="wait for the run and exit with its exit code")
    p.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits (default 3600)")
    p.set_defaults(func=trigger)
