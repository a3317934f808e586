"""The `drill` command."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from . import exits
from .inputs import InputError
from .lab.capabilities import DatabaseNodes
from .lab.reaper import UnsafeStateDir
from .provenance import version_text
from .report.cli import add_cab_args, add_record_args

if TYPE_CHECKING:
    from .lab.base import Lab

EXIT_FAIL, EXIT_INVALID = exits.FAIL, exits.INVALID


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _toxiproxy_server(args: argparse.Namespace) -> int:
    from .toxiproxy.server import main, split_hosts

    return main(
        args.host,
        args.port,
        allow_listen=split_hosts(args.allow_listen),
        max_connections=args.max_connections_per_proxy,
    )


def _run(args: argparse.Namespace) -> int:
    from .drill import run_drill
    from .errors import PlanError
    from .plan import load_plan
    from .report.cli import printer, recording_from, run_summary

    try:
        plan = load_plan(args.plan, root=Path.cwd())
    except PlanError as exc:
        _err(f"drill: invalid plan: {exc}")
        return EXIT_INVALID
    try:
        rec = recording_from(args, plan.signoff)
    except PlanError as exc:  # a sign-off flag, the window, the CAB log or key
        _err(f"drill run: {exc}")
        return EXIT_INVALID
    out = Path(args.out or Path("reports") / "out" / plan.drill)
    args.on_interrupt = (
        "faults healed and lab taken down"
        if plan.lab.provider != "external"  # main() says it
        else "faults healed; the external target is not this run's to take down"
    )  # on Ctrl-C
    code, result = run_drill(plan, out, rec, log=printer(args), verbose=args.verbose, confirm=args.confirm)
    if args.json and result is not None:
        print(json.dumps(run_summary(result, out, code), indent=1))
    return code


def _lab_up(args: argparse.Namespace) -> int:
    """Bring the embedded lab up and keep it until Ctrl-C (or `drill lab down`)."""
    from .errors import LabStartError
    from .lab.embedded import EmbeddedLab
    from .lab.runbook import RunbookServer

    lab = EmbeddedLab(replication=args.replication)
    stop = threading.Event()
    runbook = None

    def request_stop(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    try:
        lab.up()
        if lab.cluster is None:  # up() made it or raised
            raise LabStartError("the lab's database cluster did not start")
        # so that the lab can stand in for staging: a runbook endpoint and its secrets (0600)
        runbook = RunbookServer(lab, secrets.token_urlsafe(24)).start()
        secret_files = {
            name: str(lab.write_secret(name, value))
            for name, value in (
                ("pg-password", lab.cluster.password),
                ("runbook-token", runbook.token),
                ("control-token", lab.control_token),
            )
        }
        print(
            json.dumps(
                {
                    "lab_id": lab.lab_id,
                    "started_in_s": round(lab.started_in or 0, 2),
                    "endpoints": {**lab.endpoints(), "runbook": runbook.url},
                    "secret_files": secret_files,
                },
                indent=1,
            ),
            flush=True,
        )
        _err("drill: lab is up; Ctrl-C or `drill lab down` stops it")
        while not stop.wait(0.2):  # short waits: Ctrl-C (KeyboardInterrupt) is seen at once too
            pass
    except LabStartError as exc:
        _err(f"drill: the lab could not start: {exc}")
        return exits.UNREACHABLE
    except KeyboardInterrupt:
        pass
    finally:
        if runbook is not None:
            runbook.stop()
        lab.down()
    _err("drill: lab is down")
    return 0


def _manifests() -> list[dict]:
    from .lab import reaper

    # only manifests this user wrote (a file of another user, or writable by others, is ignored)
    return [data for _, data in reaper.trusted_files("*.lab.json")]


def _lab_status(args: argparse.Namespace) -> int:
    from .lab import proc

    def owner_alive(lab: dict) -> bool:  # a manifest without a pid (edited, old) names no process
        pid = lab.get("owner_pid")
        return isinstance(pid, int) and proc.same_process(pid, lab.get("owner_start_time"))

    labs = [{**lab, "owner_alive": owner_alive(lab)} for lab in _manifests()]
    if args.json:
        print(json.dumps(labs, indent=1))
    elif not labs:
        print("no lab is running")
    for lab in [] if args.json else labs:
        print(json.dumps(lab, indent=1))
    return 0


def _lab_down(args: argparse.Namespace) -> int:
    """Stop every running lab (its owner tears it down), then reap anything left."""
    from .lab import containers, embedded, proc, reaper  # noqa: F401 - registers cleanups

    for lab in _manifests():
        pid = lab.get("owner_pid")
        # only the process that wrote the manifest (same start time), never a reused pid
        if isinstance(pid, int) and proc.same_process(pid, lab.get("owner_start_time")):
            os.kill(pid, signal.SIGTERM)
            if proc.wait_gone([pid], timeout=60):
                _err(f"drill: lab {lab['lab_id']} owner {pid} did not stop; killing what it started")
                proc.kill_tree([pid])
    reaped = reaper.reap_stale()
    print(f"labs stopped; leftovers reaped: {len(reaped)}")
    return 0


def _steps(args: argparse.Namespace) -> int:
    """Print the step vocabulary from the step registry: every sentence a .feature file may use,
    with what it does, the lab capabilities it needs and what it touches (harness.steps.registry)."""
    from .steps import plugin  # noqa: F401 - imports every step module
    from .steps.registry import STEPS

    current = None
    for step in sorted(STEPS, key=lambda s: (s.module, s.kind, s.sentence)):
        if step.module != current:
            print(f"\n[{step.module}]")
            current = step.module
        print(f"  {step.kind.capitalize():5} {step.sentence}")
        if step.doc:
            print(f"        {step.doc}")
        declared = ([f"needs: {', '.join(step.needs)}"] if step.needs else []) + (
            [f"touches: {', '.join(step.touches)}"] if step.touches else []
        )
        if declared:
            print(f"        {'; '.join(declared)}")
    return 0


def _matrix(args: argparse.Namespace) -> int:
    """Print the failure-modes matrix with each row's scenario and its last verdict (CAB log)."""
    from .cab.ledger import key_or_none, verified_entries
    from .environments import lab_warning
    from .matrix import matrix_rows, render
    from .report.cli import cab_log_path

    entries, skipped = verified_entries(cab_log_path(args), key_or_none(args.cab_key))
    if args.json:
        print(
            json.dumps(
                {
                    "rows": matrix_rows(entries, Path.cwd(), args.count),
                    "skipped_unverified": skipped,
                    "count": list(args.count),
                    "lab_runs_counted": lab_warning(args.count) is not None,
                    "warning": lab_warning(args.count),
                },
                indent=1,
            )
        )
    else:
        print(render(entries, skipped, Path.cwd(), args.count))
    return 0


def _refused_before_start(name: str, kind: str, confirm: str | None) -> list[Exception]:
    """The checks `drill run` (or `drill chaos`) makes of a valid plan before its lab starts: the
    --confirm interlock, the provider's capabilities, the blast radius (harness.drill.preflight;
    a chaos plan's faults against its provider). None of them starts or calls anything."""
    from .errors import PlanError, shown
    from .inputs import printable
    from .plan import load_plan

    if kind == "drill":
        from .drill import refused_before_start

        problem = refused_before_start(load_plan(name, root=Path.cwd()), confirm)
        return [PlanError(printable(problem))] if problem else []
    if kind != "chaos":
        return []
    from .chaos.plan import load_chaos_plan
    from .chaos.runner import refused_before_start as chaos_refused_before_start

    plan = load_chaos_plan(name)
    if confirm is not None and confirm != plan.chaos:
        return [
            PlanError(
                printable(
                    f"{shown(plan.path)}: --confirm names '{printable(confirm, 80)}' but the plan "
                    f"is chaos run {plan.chaos!r}"
                )
            )
        ]
    if plan.lab == "running":  # the lab of `drill lab up`: known only while it runs
        return []
    from .lab.providers import LabSpec, external_spec, make_lab

    lab: Lab
    if plan.lab == "embedded":  # the lab `drill chaos` would make (harness.chaos.cli), not started
        lab = make_lab(LabSpec("embedded"))
    else:
        lab = make_lab(
            external_spec(
                {**plan.lab, "blast_radius": list(plan.blast_radius)},
                lambda key, message: PlanError(f"{key}: {message}"),
            )
        )
    problems = chaos_refused_before_start(plan, lab)
    return [PlanError(f"{shown(plan.path)}: nothing would be injected: {'; '.join(problems)}")] if problems else []


def _validate(args: argparse.Namespace) -> int:
    """PLAN files: check drill and chaos plans without running anything, every error of each
    file at once: exit 0 all valid, 2 any invalid. --after-failover: post-failover validation of
    a running lab or an external target: table (or --json), exit 0 all pass, 1 a check failed,
    3 one could not be judged, 2 invalid input, 4 the target cannot be reached."""
    from .validate import check_plan_file

    if args.plans and args.after_failover:
        _err("drill validate: give PLAN files to check, or --after-failover to validate a target, not both")
        return EXIT_INVALID
    if args.plans:
        if args.plan is not None:
            _err(
                "drill validate: --plan names the target of --after-failover; to check plan files give them "
                "without --plan"
            )
            return EXIT_INVALID
        report, invalid = [], 0
        for name in args.plans:
            kind, plan_errors = check_plan_file(name, Path.cwd())
            errors: list[Exception] = list(plan_errors)
            if not errors:  # what run or chaos would refuse before starting: refused here too
                errors = _refused_before_start(name, kind, args.confirm)
            invalid += bool(errors)
            report.append({"file": name, "kind": kind, "valid": not errors, "errors": [str(e) for e in errors]})
        if args.json:
            print(json.dumps(report, indent=1))
        for entry in [] if args.json else report:
            print(f"ok  {entry['file']}" if entry["valid"] else "\n".join(entry["errors"]))
        if invalid:
            _err(f"drill validate: {invalid} of {len(report)} plan file(s) invalid")
        return EXIT_INVALID if invalid else exits.PASS
    if not args.after_failover:
        _err("drill validate: say what to validate: PLAN files (drill or chaos plans), or --after-failover")
        return EXIT_INVALID
    import uuid

    from .errors import LabStartError, PlanError
    from .gates import evaluate_gates
    from .lab.attach import running_lab_config
    from .lab.providers import LabSpec, external_spec, make_lab
    from .model import Verdict
    from .plan import load_plan
    from .runner.validation import checks, collect
    from .text import show
    from .workload import Recorder

    try:
        if args.plan:
            plan = load_plan(args.plan)
            if plan.lab.provider != "external":
                raise PlanError(
                    f"{args.plan}: key 'lab.provider': validate needs a target to reach: a plan of "
                    f"provider external, or no --plan for the running `drill lab up` lab"
                )
            spec = LabSpec("external", external=plan.lab.external)  # the plan's target, its replication the default
        else:
            spec = external_spec(running_lab_config(), lambda key, message: PlanError(f"{key}: {message}"))
    except (PlanError, ValueError) as exc:
        _err(f"drill validate: {exc}")
        return EXIT_INVALID
    try:
        lab = make_lab(spec).up()
        lab.part(DatabaseNodes).database_primary()
    except LabStartError as exc:
        _err(f"drill validate: the target cannot be reached: {exc}")
        return exits.UNREACHABLE
    recorder = Recorder()
    collect(lab, recorder, f"validate-{uuid.uuid4()}", writes=args.threshold, window=args.window)
    results = evaluate_gates(checks(args.threshold), recorder.history())
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=1, default=str))
    else:
        for r in results:
            print(f"{r.verdict.value.upper():8} {r.id:26} {show(r.measured)}" + (f"  ({r.detail})" if r.detail else ""))
    worst = Verdict.worst(r.verdict for r in results)
    return {Verdict.PASS: exits.PASS, Verdict.FAIL: exits.FAIL}.get(worst, exits.UNKNOWN)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drill",
        description="Disaster-recovery drill harness.",
        epilog=exits.HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("run", help="run a drill plan end to end and write its reports")
    p.add_argument("plan", help="drill plan, e.g. drills/quarterly-database.yaml")
    p.add_argument("--out", help="output folder (default reports/out/<drill id>)")
    p.add_argument("-v", "--verbose", action="store_true", help="show each Gherkin step as it runs")
    p.add_argument(
        "--confirm",
        metavar="DRILL_ID",
        help="allow faults against an external target (with allow_destructive: true in the plan)",
    )
    add_record_args(p)
    p.set_defaults(func=_run)

    lab = sub.add_parser("lab", help="the embedded lab, for manual use")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="ACTION")
    lab_sub.required = True
    up = lab_sub.add_parser("up", help="start the embedded lab and keep it until Ctrl-C")
    up.add_argument("--replication", choices=("sync", "async"), default="sync")
    up.set_defaults(func=_lab_up)
    lab_sub.add_parser("down", help="stop running labs and reap leftovers of killed runs").set_defaults(func=_lab_down)
    status = lab_sub.add_parser("status", help="list running labs and their endpoints")
    status.add_argument("--json", action="store_true", help="print a JSON list")
    status.set_defaults(func=_lab_status)

    sub.add_parser("steps", help="print the Gherkin step vocabulary, documented").set_defaults(func=_steps)
    p = sub.add_parser(
        "validate",
        help="check plan files without running anything, or (--after-failover) "
        "validate the running lab or an external target after a failover",
        description="drill validate PLAN [PLAN...]: check drill and chaos plans without running "
        "anything and list every error of each file at once ('ok  FILE' for a valid "
        "one, 'FILE: key ...' per error); exit 0 all valid, 2 any invalid. A file whose "
        "YAML mapping has a 'chaos' key is a chaos plan (drill chaos), any other a drill "
        "plan (drill run); feature paths resolve against the current folder, as drill "
        "run does. drill validate --after-failover [--plan PLAN]: post-failover checks "
        "of a running target (not with PLAN files).",
    )
    p.add_argument(
        "plans",
        nargs="*",
        metavar="PLAN",
        help="drill or chaos plan files to check (a mapping with a 'chaos' key is a chaos plan)",
    )
    p.add_argument(
        "--after-failover",
        action="store_true",
        help="ServicesReady, MetadataTablesInSync, EventCountGrowth, ApprovalEventCount on the DR "
        "copy, failover events in the SIEM",
    )
    p.add_argument("--plan", help="an external plan naming the target (default: the running `drill lab up` lab)")
    p.add_argument("--threshold", type=int, default=5, help="EventCountGrowth threshold: probe writes made (default 5)")
    p.add_argument("--window", type=float, default=3.0, help="seconds the probe writes are spread over (default 3)")
    p.add_argument("--json", action="store_true", help="print the checks (or each plan file's errors) as JSON")
    p.add_argument(
        "--confirm",
        metavar="ID",
        help="check PLAN files as `drill run --confirm ID` (or `drill "
        "chaos --confirm ID`) would: the id must be the plan's",
    )
    p.set_defaults(func=_validate)
    p = sub.add_parser("matrix", help="print the failure-modes matrix with each row's scenario and last verdict")
    add_cab_args(p)
    from .environments import add_count_arg

    add_count_arg(p, "a row's last verdict")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=_matrix)

    from .chaos.cli import add_parser as add_chaos
    from .report.cli import add_parsers as add_record
    from .schedule.cli import add_parser as add_schedule

    add_schedule(sub)
    add_chaos(sub)
    add_record(sub)

    p = sub.add_parser("toxiproxy-server", help="run the embedded Toxiproxy-compatible fault server in the foreground")
    p.add_argument("--host", default="127.0.0.1", help="address of the HTTP API (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8474, help="port of the HTTP API (default 8474; 0 = free port)")
    p.add_argument(
        "--allow-listen",
        action="append",
        metavar="HOST[,HOST]",
        help="addresses proxies may listen on besides loopback and the API's own "
        "(0.0.0.0 or :: for every interface); repeatable",
    )
    p.add_argument(
        "--max-connections-per-proxy",
        type=int,
        default=1024,
        metavar="N",
        help="connections one proxy holds at most; more are closed at once (default 1024)",
    )
    p.set_defaults(func=_toxiproxy_server)
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM is Ctrl-C: faults healed, lab down (commands may set their own)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return args.func(args)
    except UnsafeStateDir as exc:  # the lab registry could be written by another user: refused
        _err(f"drill: {exc}")
        return exits.INVALID
    except InputError as exc:  # a file or value the user named cannot be used: the message says why
        _err(f"drill {args.command}: {exc}")
        return exits.INVALID
    except KeyboardInterrupt:  # a command says what its clean-up did (args.on_interrupt); none: nothing to say
        note = getattr(args, "on_interrupt", None)
        _err("drill: interrupted" + (f"; {note}" if note else ""))
        return exits.INTERRUPTED
    except BrokenPipeError:  # the reader went away (`drill steps | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:  # a bug of the harness: said as one, never mistaken for a failed gate
        traceback.print_exc()
        _err(f"drill: the harness itself failed ({version_text()}); this is a bug, not a verdict: exit {exits.CRASH}")
        return exits.CRASH
    finally:
        if main_thread:  # called in-process (tests, scripts): leave the caller's handler
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
