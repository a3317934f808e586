"""`drill chaos PLAN` and `drill halt`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import exits
from ..errors import PlanError, shown
from ..inputs import printable
from ..report.cli import add_record_args

if TYPE_CHECKING:
    from ..lab.base import Lab

EXIT_INVALID = exits.INVALID
SIGNAL_REASONS = {
    signal.SIGINT: "SIGINT (Ctrl-C) received",
    signal.SIGTERM: "SIGTERM received",
    signal.SIGUSR1: "halted by `drill halt`",
}


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _open_lab(plan, confirm: str | None) -> tuple[Lab, bool]:
    """(lab, whether this run starts and stops it)."""
    from ..lab.attach import running_lab_config
    from ..lab.providers import LabSpec, external_spec, make_lab

    def fail(key: str, message: str) -> PlanError:
        return PlanError(printable(f"{shown(plan.path)}: key '{key}': {message}"))

    if plan.lab == "embedded":
        return make_lab(LabSpec("embedded")), True
    if plan.lab == "running":
        try:
            data = running_lab_config()
        except ValueError as exc:
            reason = str(exc).split(";")[0]
            raise PlanError(
                f"{shown(plan.path)}: key 'lab': running needs one `drill lab up` lab: {reason}; start "
                f"one in another terminal, or set lab: embedded for a lab of this run's own"
            ) from None
        # the user's own `drill lab up` lab: no interlock, faults limited to the plan's blast radius
        data.update(allow_destructive=True, blast_radius=list(plan.blast_radius))
        return make_lab(external_spec(data, fail), confirmed=True), False
    data = {**plan.lab, "blast_radius": list(plan.blast_radius)}
    return make_lab(external_spec(data, fail), confirmed=confirm == plan.chaos), False


def chaos(args: argparse.Namespace) -> int:
    from ..errors import LabStartError
    from ..report.cli import printer, recording_from, run_summary
    from ..signoff import SignOff
    from .plan import draw, load_chaos_plan, parse_duration
    from .runner import Halt, capability, default_out, describe_step, register_run, run_chaos

    args.on_interrupt = "nothing had been started"  # what harness.cli.main says on Ctrl-C
    try:
        plan = load_chaos_plan(args.plan)
        if args.seed is not None:
            duration = parse_duration(args.duration, lambda k, m: PlanError(f"--duration: {m}"), "--duration")
            names = [n.strip() for n in args.faults.split(",") if n.strip()] if args.faults else None
            steps = draw(plan, args.seed, duration, names)
        elif args.faults or args.duration:
            raise PlanError("--faults and --duration draw a random game day: give --seed N too")
        else:
            if not plan.steps:
                raise PlanError(
                    f"{shown(plan.path)}: key 'faults': the plan has no fixed sequence; run a game day "
                    f"with --seed N --duration D"
                )
            steps = plan.steps
        if args.confirm is not None and args.confirm != plan.chaos:
            raise PlanError(
                f"--confirm names '{printable(args.confirm, 80)}' but {shown(plan.path)} is chaos run {plan.chaos!r}"
            )
        lab, own = _open_lab(plan, args.confirm)
        rec = recording_from(args, SignOff())
    except PlanError as exc:
        _err(f"drill: invalid chaos plan: {exc}")
        return EXIT_INVALID
    out = Path(args.out) if args.out else default_out(plan)
    dry_run = args.dry_run or lab.dry_run
    _err(
        f"drill: chaos {plan.chaos}: {len(steps)} fault(s)"
        + (f", seed {args.seed}" if args.seed is not None else "")
        + (
            " -- DRY RUN, nothing will be injected" + (f" ({lab.interlock()})" if lab.dry_run else "")
            if dry_run
            else ""
        )
    )
    for step in steps:
        _err(f"drill:   {describe_step(step)}")
    halt = Halt()

    def on_signal(signum, frame):
        if halt.set and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting for the outputs
        halt.trip(SIGNAL_REASONS.get(signum, f"signal {signum} received"))

    for sig in SIGNAL_REASONS:
        signal.signal(sig, on_signal)
    record = None
    try:
        try:
            started = time.monotonic()
            args.on_interrupt = (
                "faults healed and lab taken down"
                if own
                else "faults healed; the lab was not this run's, it is left up"
            )
            lab.up()
            if own:
                _err(f"drill: lab up in {time.monotonic() - started:.1f} s (embedded)")
        except LabStartError as exc:
            _err(f"drill: the lab could not be reached or started: {exc}")
            return exits.UNREACHABLE
        problems = [p for p in (capability(s, lab) for s in steps) if p]
        if problems:
            _err(printable(f"drill: invalid chaos plan: {shown(plan.path)}: nothing injected: " + "; ".join(problems)))
            return EXIT_INVALID
        record = register_run(plan, out)
        code, result = run_chaos(
            plan, steps, lab, out, rec, seed=args.seed, dry_run=dry_run, halt=halt, record=record, log=printer(args)
        )
        if args.json and result is not None:
            print(json.dumps(run_summary(result, out, code), indent=1))
        return code
    finally:
        if record is not None:
            record.unlink(missing_ok=True)
        if own:
            lab.down()


def _runs() -> list[tuple[Path, dict]]:
    from ..lab import proc, reaper

    found = []
    for path in sorted(reaper.state_dir().glob("chaos-*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        pid = data.get("pid")
        # a record is trusted only while its process is the one that wrote it (pids are reused)
        if isinstance(pid, int) and proc.is_alive(pid) and proc.start_time(pid) == data.get("start_time"):
            found.append((path, data))
        elif not (isinstance(pid, int) and proc.is_alive(pid)):
            path.unlink(missing_ok=True)
    return found


def halt(args: argparse.Namespace) -> int:
    """Signal every running chaos run to heal its faults and stop; wait until each says it healed."""
    runs = _runs()
    if not runs:
        print("no chaos run is running")
        return 0
    code = 0
    for path, data in runs:
        sent = time.time()
        os.kill(data["pid"], signal.SIGUSR1)
        deadline = time.monotonic() + args.timeout
        healed = None
        while time.monotonic() < deadline:
            try:
                healed = json.loads(path.read_text()).get("healed_at")
            except (OSError, ValueError):
                healed = None
                if not path.exists():
                    break
            if healed:
                break
            time.sleep(0.02)
        if healed:
            print(
                f"chaos {data['chaos']} (pid {data['pid']}): every fault healed {max(0.0, healed - sent):.2f} s "
                f"after the halt; its report: {data['out_dir']}"
            )
        elif not path.exists():
            print(f"chaos {data['chaos']} (pid {data['pid']}) ended")
        else:
            print(f"chaos {data['chaos']} (pid {data['pid']}): no heal reported within {args.timeout:g} s")
            code = 1
    return code


def add_parser(sub) -> None:
    p = sub.add_parser("chaos", help="an ad hoc chaos run: faults as data, the drills' probes, checkers and reports")
    p.add_argument("plan", help="chaos plan, e.g. drills/chaos/db-latency-200ms.yaml")
    p.add_argument("--seed", type=int, help="a random game day drawn from the plan's game_day set with this seed")
    p.add_argument("--duration", help="game day length, e.g. 10m (with --seed)")
    p.add_argument("--faults", help="comma-separated names of the game_day set to draw from (default all)")
    p.add_argument("--dry-run", action="store_true", help="print what would be injected, check probes, inject nothing")
    p.add_argument("--out", help="output folder (default reports/out/<chaos id>/<UTC time>)")
    p.add_argument(
        "--confirm",
        metavar="CHAOS_ID",
        help="allow faults against an external target (with allow_destructive: true in its lab)",
    )
    add_record_args(p)
    p.set_defaults(func=chaos)
    p = sub.add_parser("halt", help="stop every running chaos run: its faults healed at once, verdict fail")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each run's heal (default 30)")
    p.set_defaults(func=halt)
