"""The failure-modes matrix per lab provider, side by side, in one run: the same scenarios (rows
1-7 and the HA domains' after-failover ones: "@quarterly and not @ha-domain:backup-restore"; the
backup scenarios need the embedded lab's backup service) run by `drill run` on the embedded lab
(drills/quarterly-full.yaml's lab), on containers (drills/quarterly-full-containers.yaml) and
against an external target (a `drill lab up` lab standing in for staging, its runbook and proxies
named in the plan, as tests/integration/conftest.py builds it). For each: lab up, scenarios,
reports and lab down, wall time, and each row's RTO (on what its fault blocks) and verdict.
Run from the repository root: python benchmarks/matrix_wall_time.py [--providers embedded,testcontainers]
[--keep DIR]"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DRILL = [sys.executable, "-m", "harness.cli"]
SELECTION = "@quarterly and not @ha-domain:backup-restore"
PROVIDERS = ("embedded", "testcontainers", "external")
PROGRESS = re.compile(r"^drill: \[\s*([\d.]+) s\] (\S+)\s+(.*)$")


def seconds(a: str, b: str) -> float:
    return (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds()


def plan_for(provider: str, work: Path, staging: dict | None) -> Path:
    data = yaml.safe_load((ROOT / "drills" / "quarterly-full-containers.yaml").read_text())
    data.update(drill=f"matrix-{provider}", scenarios=SELECTION)
    if provider == "embedded":
        data["lab"] = "embedded"
    elif provider == "external":
        from tests.integration.conftest import staging_lab_config

        data["lab"] = staging_lab_config(staging)
        # an external plan must say what it is: here a lab standing in for staging (a rehearsal)
        data["environment"] = {"class": "lab", "name": "drill lab up standing in for staging"}
    path = work / f"{provider}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(provider: str, work: Path, staging: dict | None) -> dict:
    plan = plan_for(provider, work, staging)
    out = work / f"out-{provider}"
    args = [*DRILL, "run", str(plan), "--out", str(out), "--cab-log", str(work / "cab.jsonl")]
    if provider == "external":
        args += ["--confirm", f"matrix-{provider}"]
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if not (out / "results.json").exists():
        raise SystemExit(f"{provider}: no results (exit {done.returncode}):\n{done.stderr[-2000:]}")
    marks = {}
    for line in done.stderr.splitlines():
        m = PROGRESS.match(line)
        if m and m.group(2) == "lab":
            marks[m.group(3).split()[0]] = float(m.group(1))  # "starting", "up", "taking"
    results = json.loads((out / "results.json").read_text())
    scenarios = sum(seconds(s["started_at"], s["finished_at"]) for s in results["scenarios"])
    lab_up = marks.get("up", 0.0) - marks.get("starting", 0.0) if "up" in marks else 0.0
    down = wall - marks["taking"] if "taking" in marks else 0.0
    return {
        "wall": wall,
        "lab_up": lab_up,
        "down": down,
        "scenarios": scenarios,
        "exit": done.returncode,
        "verdict": results["verdict"],
        "results": results,
    }


def row_table(runs: dict[str, dict]) -> None:
    names = list(runs)
    first = runs[names[0]]["results"]["scenarios"]
    print(f"{'row':>3}  {'scenario':56} " + " ".join(f"{n[:14] + ' (took)':>30}" for n in names))
    for i, s in enumerate(first):
        row = (s.get("matrix_row") or {}).get("number", "-")
        cells = []
        for n in names:
            other = runs[n]["results"]["scenarios"][i] if i < len(runs[n]["results"]["scenarios"]) else None
            if other is None:
                cells.append(f"{'missing':>30}")
                continue
            rto = other["measurements"].get("rto_seconds")
            took = seconds(other["started_at"], other["finished_at"])
            cells.append(f"{other['verdict']:>5} {'RTO n/a' if rto is None else f'RTO {rto:6.2f} s':>16} {took:5.1f} s")
        print(f"{row!s:>3}  {s['name'][:56]:56} " + " ".join(cells))
    for n in names:  # why a scenario did not pass: its gates that did not
        for s in runs[n]["results"]["scenarios"]:
            for g in s.get("gates", []):
                if g.get("verdict") != "pass":
                    print(
                        f"{n}: {s['name'][:56]}: {g['id']} {g.get('verdict')}, measured {g.get('measured')}"
                        + (f" ({g['detail']})" if g.get("detail") else "")
                    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    parser.add_argument("--keep", metavar="DIR", help="write the drills' outputs under DIR and keep them")
    args = parser.parse_args()
    providers = args.providers.split(",")
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("DRILL_CAB_LOG", str(work / "cab.jsonl"))
        staging, process, started = None, None, 0.0
        try:
            if "external" in providers:
                from tests.integration.conftest import TOKEN_ENV, add_aws_key_files, start_lab_up

                started = time.perf_counter()
                process, staging = start_lab_up({"DRILL_STATE_DIR": str(work / "state")})
                staging["lab_up_s"] = time.perf_counter() - started
                (work / "keys").mkdir()
                add_aws_key_files(staging, work / "keys")
                os.environ[TOKEN_ENV] = Path(staging["secret_files"]["runbook-token"]).read_text()
            for provider in providers:
                print(f"running the matrix on {provider} ...", file=sys.stderr, flush=True)
                runs[provider] = run(provider, work, staging)
        finally:
            if process is not None:
                process.terminate()
                process.wait(60)
    if "external" in runs:  # the target stood before the drill: its start is not the drill's
        runs["external"]["lab_up"] = staging["lab_up_s"]
    print(f"{'':22}" + "".join(f"{p:>18}" for p in runs))
    for label, key in (
        ("lab up (s)", "lab_up"),
        ("scenarios (s)", "scenarios"),
        ("lab down (s)", "down"),
        ("wall of drill run (s)", "wall"),
    ):
        print(f"{label:22}" + "".join(f"{r[key]:18.1f}" for r in runs.values()))
    print(f"{'verdict, exit':22}" + "".join(f"{r['verdict'] + ', ' + str(r['exit']):>18}" for r in runs.values()))
    base = runs.get("embedded")
    if base:
        print(f"{'wall / embedded':22}" + "".join(f"{r['wall'] / base['wall']:18.2f}" for r in runs.values()))
    print("(external: `lab up` is the stand-in staging's own start, before the drill; its wall time has no lab start)")
    print()
    row_table(runs)
    return 0 if all(r["exit"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
