"""The record's commands: `drill verify DIR`, `drill cab verify`, `drill report DIR [--pdf]`,
`drill history`, and the sign-off flags `drill run` and `drill chaos` share."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import exits
from ..cab.ledger import (
    GENESIS,
    CabKey,
    CabKeyError,
    CabLogCorrupt,
    append_cab_record,
    check_appendable,
    check_line,
    check_log,
    load_key,
    log_lines,
)
from ..environments import add_count_arg
from ..errors import PlanError
from ..inputs import RECORD_MAX, InputError, parse_json, printable, read_capped
from ..progress import Progress
from ..signoff import SignOff, check_window, with_flags
from .manifest import DirCheck, check_dir
from .record import Recording, make_pdf

DEFAULT_CAB_LOG = Path("reports") / "cab-log.jsonl"


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def cab_log_path(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "cab_log", None) or os.environ.get("DRILL_CAB_LOG") or DEFAULT_CAB_LOG)


def add_cab_args(p: argparse.ArgumentParser, writes: bool = False) -> None:
    p.add_argument(
        "--cab-log",
        help=f"CAB log to {'append to' if writes else 'read'} (default $DRILL_CAB_LOG or {DEFAULT_CAB_LOG})",
    )
    p.add_argument(
        "--cab-key",
        help="the CAB log's signing key file (default $DRILL_CAB_KEY or "
        "~/.config/drill/cab.key" + (", created on first use)" if writes else ")"),
    )


def add_record_args(p: argparse.ArgumentParser) -> None:
    """The flags of a recorded run: sign-off (they win over the plan's keys), the log, output."""
    add_cab_args(p, writes=True)
    g = p.add_argument_group("sign-off (override the plan's keys of the same names)")
    g.add_argument("--owner", help="who owns the drill (a team or a person)")
    g.add_argument("--operator", help="who runs it (default: the OS user)")
    g.add_argument("--approver", help="who approved the change")
    g.add_argument("--change-ticket", help="the change ticket, e.g. CHG0012345")
    g.add_argument(
        "--window",
        metavar="START/END",
        help="the change window, ISO 8601 with a time zone, e.g. 2026-12-01T06:00Z/2026-12-01T08:00Z",
    )
    g.add_argument(
        "--outside-window",
        action="store_true",
        help="run although now is outside the window (the report and the CAB record say so)",
    )
    p.add_argument("--pdf", action="store_true", help="also write report.pdf (headless Chromium)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout instead of the report path")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary lines on stderr")


def recording_from(args: argparse.Namespace, plan_signoff: SignOff):
    """The Recording the flags ask for; PlanError (exit 2) for a bad flag, a missing key or a run
    outside its window."""

    def fail(key: str, message: str) -> PlanError:
        return PlanError(f"{key}: {message}")

    flags = {k: getattr(args, k, None) for k in ("owner", "operator", "approver", "change_ticket", "window")}
    signoff = with_flags(plan_signoff, flags, fail)
    signoff, refused = check_window(signoff, datetime.now(UTC), args.outside_window)
    if refused:
        raise PlanError(refused)
    try:
        key = load_key(args.cab_key, create=args.cab_key is None)
        check_appendable(cab_log_path(args))  # refused now, not after the drill ran
    except (InputError, CabLogCorrupt) as exc:
        raise PlanError(str(exc)) from None
    return Recording(
        cab_log_path(args), key=key, signoff=signoff, pdf=args.pdf, progress=Progress(quiet=args.quiet or args.json)
    )


def printer(args: argparse.Namespace):
    """print for a run's lines: stderr ones dropped by --quiet and --json, stdout ones by --json."""

    def log(*parts, file=None):
        if file is sys.stderr:
            if not (args.quiet or args.json):
                print(*parts, file=sys.stderr)
        elif not args.json:
            print(*parts)

    return log


def run_summary(result: Any, out_dir: Path, code: int) -> dict[str, Any]:
    """What `drill run --json` prints: the verdict, the figures per scenario and where the outputs are."""
    from ..cab.ledger import gates_summary

    results = result.to_json()
    return {
        "drill": result.drill,
        "verdict": result.verdict.value,
        "exit_code": code,
        "correlation_id": result.correlation_id,
        "out_dir": str(out_dir),
        "report": str(out_dir / "report.html"),
        "environment_class": result.environment_class,
        "residual_risk": (result.risk or {}).get("residual"),
        "gates": gates_summary(results),
        "not_run": results.get("not_run"),  # a run that could not act: its cause, no verdict
        "scenarios": [
            {
                "name": s.name,
                "verdict": s.verdict.value,
                "matrix_row": (s.matrix_row or {}).get("number"),
                **{k: s.measurements.get(k) for k in ("rto_seconds", "rpo_seconds", "lost_writes")},
            }
            for s in result.scenarios
        ],
    }


# ---- drill verify / drill cab verify -------------------------------------------------------------


def _key(args: argparse.Namespace):
    try:
        return load_key(args.cab_key)
    except CabKeyError as exc:
        _err(f"drill: {exc}")
        return None


def verify_folder(out_dir: Path, log: Path, key: CabKey) -> tuple[int, str, DirCheck]:
    """(exit code, the line to print, the manifest as checked) of `drill verify`: every file of the folder against its
    manifest, then the manifest against the newest keyed line of the log that records the folder
    (the drill's own, or the latest report rebuild's). exits.PASS only when all of it holds."""
    checked = check_dir(out_dir)
    if not checked.intact:
        return exits.FAIL, f"NOT INTACT: {checked.problem}", checked
    target, found, prev = str(out_dir.resolve()), None, None
    try:
        for line in log_lines(log):
            entry = line.entry if isinstance(line.entry, dict) else None
            if entry is not None and entry.get("out_dir") == target:
                found = (line.number, entry, prev)
            prev = entry.get("hash") if entry is not None else None
    except FileNotFoundError:
        return exits.INVALID, f"{printable(log)}: no CAB log (give --cab-log)", checked
    shown = printable(log)
    if found is None:
        return exits.FAIL, f"NOT INTACT: no line of {shown} records {printable(target)}", checked
    number, entry, prev = found
    reason = check_line(entry, prev if number > 1 else GENESIS, key)
    if reason:
        return exits.FAIL, f"NOT INTACT: {shown} line {number}: {reason}", checked
    if entry.get("manifest") != checked.manifest_sha256:
        return (
            exits.FAIL,
            (
                f"NOT INTACT: {printable(out_dir / 'manifest.json')}: its sha256 is not the one {shown} "
                f"line {number} records"
            ),
            checked,
        )
    return (
        exits.PASS,
        (
            f"INTACT: {printable(out_dir)}: every file matches its manifest, recorded in {shown} line "
            f"{number} ({printable(entry.get('kind', 'drill'), 20)}, {printable(entry.get('drill'), 70)}, "
            f"verdict {printable(entry.get('verdict', '-'), 10)})"
        ),
        checked,
    )


def _verify_dir(args: argparse.Namespace) -> int:
    """The folder's files against its manifest, and the manifest against the CAB line naming it."""
    out_dir = Path(args.dir)
    if not out_dir.is_dir():
        _err(f"drill verify: {printable(out_dir)}: no such folder")
        return exits.INVALID
    key = _key(args)
    if key is None:
        return exits.INVALID
    code, said, _ = verify_folder(out_dir, cab_log_path(args), key)
    if code == exits.INVALID:
        _err(f"drill verify: {said}")
    else:
        print(said)
    return code


def _verify_log(args: argparse.Namespace) -> int:
    log = cab_log_path(args)
    key = _key(args)
    if key is None:
        return exits.INVALID
    try:
        check = check_log(log, key)
    except FileNotFoundError:
        _err(f"drill cab verify: {log}: no such CAB log (give --cab-log)")
        return exits.INVALID
    if not check.intact:
        number, reason = check.bad[0]
        print(
            f"NOT INTACT: {log} line {number}: {reason}"
            + (f" ({len(check.bad) - 1} more bad line(s))" if len(check.bad) > 1 else "")
        )
        return exits.FAIL
    print(f"INTACT: {log}: {check.lines} line(s), chained and signed with key {key.key_id}")
    return exits.PASS


# ---- drill report DIR [--pdf] -------------------------------------------------------------------


def _report(args: argparse.Namespace) -> int:
    """Rebuild report.html from results.json (and report.pdf with --pdf), re-seal the folder and
    record the rebuild in the CAB log. Refused unless the whole `drill verify` says INTACT: every
    file against the manifest and the manifest against the keyed CAB line recording the folder, so
    an edited file with a re-computed (or deleted) manifest is never signed again."""
    from ..model import DrillResult
    from .html import write_html
    from .manifest import write_manifest

    out_dir = Path(args.dir)
    results = out_dir / "results.json"
    if not out_dir.is_dir():
        _err(f"drill report: {printable(out_dir)}: no such folder; give a drill's output folder")
        return exits.INVALID
    key = _key(args)
    if key is None:
        return exits.INVALID
    log = cab_log_path(args)
    code, said, checked = verify_folder(out_dir, log, key)
    if code != exits.PASS:
        print(f"{said}; not rebuilding a report from a folder `drill verify` does not find intact")
        return code
    try:
        check_appendable(log)
        raw = read_capped(results, RECORD_MAX, "results.json", folder=out_dir)
        if hashlib.sha256(raw).hexdigest() != checked.files.get("results.json"):  # read once: what is judged
            print(f"NOT INTACT: {printable(results)}: changed while it was verified, or not in the manifest")
            return exits.FAIL
        data = parse_json(raw, f"{printable(results)}")
        if not isinstance(data, dict):
            raise InputError(f"{printable(results)}: not a drill's results (a JSON object is expected)")
        result = DrillResult.from_json(data)
    except CabLogCorrupt as exc:
        print(f"NOT INTACT: {exc}")
        return exits.FAIL
    except InputError as exc:
        _err(f"drill report: {exc}")
        return exits.INVALID
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # the shape of results.json
        _err(f"drill report: {printable(results)}: not a drill's results ({type(exc).__name__}: {printable(exc, 160)})")
        return exits.INVALID
    html = write_html(result, out_dir)
    written = [html.name]
    if args.pdf:
        pdf = make_pdf(html, result)
        if pdf is None:
            return exits.UNREACHABLE
        written.append(pdf.name)
    digest = write_manifest(out_dir, {"drill": result.drill, "correlation_id": result.correlation_id})
    append_cab_record(
        log,
        {
            "kind": "report",
            "event": "rebuilt",
            "drill": result.drill,
            "correlation_id": result.correlation_id,
            "files": written,
            "out_dir": str(out_dir.resolve()),
            "manifest": digest,
        },
        key,
    )
    for name in written:
        print(out_dir / name)
    return exits.PASS


# ---- drill history ------------------------------------------------------------------------------


def _history(args: argparse.Namespace) -> int:
    from ..cab.ledger import key_or_none, verified_entries
    from ..files import atomic_write_text
    from .history import history, render_history

    html = Path(args.html)
    if not html.parent.is_dir() or html.is_dir():
        _err(
            f"drill history: --html {printable(html)}: "
            + (
                "is a folder; name the page's file, e.g. reports/history.html"
                if html.is_dir()
                else f"the folder {printable(html.parent)} does not exist; "
                "create it or name a page in a folder that exists"
            )
        )
        return exits.INVALID
    key = key_or_none(args.cab_key)
    entries, skipped = verified_entries(cab_log_path(args), key)
    data = history(entries, skipped, datetime.now(UTC), count=args.count)
    page = atomic_write_text(html, render_history(data))
    if args.json:
        print(json.dumps({**data, "page": str(page)}, indent=1))
        return exits.PASS
    if data["warning"]:
        print(data["warning"])
    by_class = ", ".join(f"{n} {c}" for c, n in data["runs_by_class"].items())
    print(
        f"{data['runs']} drill run(s){' (' + by_class + ')' if by_class else ''}, {data['passed']} passed; "
        f"counted toward a domain's quarterly drill: class {data['count_words']}; trend page: {page}"
    )
    if skipped:
        print(f"{skipped} CAB log line(s) skipped: not verified" + ("" if key else " (no CAB key: give --cab-key)"))
    for d in data["domains"]:
        last = d["last_pass"]
        rate = "no runs" if d["pass_rate"] is None else f"{d['passed']}/{d['runs']} passed"
        shown = f"{last['drill']} {last['finished_at'][:10]} ({last['class']})" if last else "none"
        newer = d["newer_uncounted"]
        print(
            printable(
                f"  {d['domain']:15} {rate:14} last counted pass: {shown:50} "
                f"{'OVERDUE' if d['overdue'] else ''}"
                + (
                    f" (newer, not counted: {newer['drill']} {newer['finished_at'][:10]} ({newer['class']}))"
                    if newer
                    else ""
                )
            ).rstrip()
        )
    return exits.PASS


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="check a drill output folder against its manifest and the CAB log",
        description="Exit 0 when every file matches the folder's manifest and the manifest matches "
        "the keyed CAB line that records the folder; 1 naming the first file or line that "
        "does not.",
    )
    p.add_argument("dir", help="a drill's output folder, e.g. reports/out/quarterly-database")
    add_cab_args(p)
    p.set_defaults(func=_verify_dir)

    cab = sub.add_parser("cab", help="the CAB log")
    cab_sub = cab.add_subparsers(dest="cab_command", metavar="ACTION")
    cab_sub.required = True
    p = cab_sub.add_parser(
        "verify",
        help="check every line's chain and signature",
        description="Exit 0 when every line chains onto the one before and its mac verifies with "
        "the key; 1 naming the first line that does not.",
    )
    add_cab_args(p)
    p.set_defaults(func=_verify_log)

    p = sub.add_parser("history", help="every verified drill per HA domain and quarter, and an HTML trend page")
    p.add_argument("--json", action="store_true", help="print the history as JSON")
    p.add_argument(
        "--html",
        default=str(Path("reports") / "history.html"),
        help="where to write the trend page (default reports/history.html)",
    )
    add_count_arg(p)
    add_cab_args(p)
    p.set_defaults(func=_history)

    p = sub.add_parser("report", help="rebuild a drill's report.html from its results.json (and --pdf)")
    p.add_argument("dir", help="a drill's output folder")
    p.add_argument("--pdf", action="store_true", help="also write report.pdf (headless Chromium)")
    add_cab_args(p, writes=True)
    p.set_defaults(func=_report)
