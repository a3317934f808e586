"""How fast a chaos run heals when it is halted: `drill halt` from another terminal, SIGINT (Ctrl-C)
and SIGTERM (what CI runners and schedulers send). The spec for ad hoc runs: within 1 s.

One `drill lab up` lab; for each way and run, a `drill chaos` run holding 100 ms of latency on the
database link for 120 s is started, and once the fault server shows the toxic, it is halted. The
figure is the time from the signal until the fault server itself no longer lists the toxic, polled
every 5 ms by this process (for `drill halt`: from its signal to the run's heal, as it reports, and
from the command's start, Python start-up included, to no toxic at the fault server).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
DRILL = [sys.executable, "-m", "harness.cli"]
PLAN = {
    "chaos": "halt-bench",
    "title": "halt benchmark",
    "lab": "running",
    "blast_radius": ["db"],
    "workload": "probes",
    "faults": [{"type": "latency", "target": "db", "params": {"latency_ms": 100}, "duration": "120s"}],
}


def toxics(url: str) -> list:
    return requests.get(f"{url}/proxies/db/toxics", timeout=5).json()


def wait(condition, timeout: float, interval: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def one(way: str, url: str, plan: Path, env: dict, work: Path) -> tuple[float, float | None]:
    """(seconds from the halt signal to the heal, seconds from `drill halt`'s start to no toxic at the
    fault server: that way only)."""
    chaos = subprocess.Popen(
        [*DRILL, "chaos", str(plan), "--out", str(work / "out"), "--cab-log", str(work / "cab.jsonl")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if not wait(lambda: toxics(url), 120, 0.01):
            said = chaos.stderr.read() if chaos.poll() is not None else ""
            raise SystemExit(f"the chaos run injected nothing: {said}")
        if way == "drill halt":
            started = time.monotonic()
            out = subprocess.run([*DRILL, "halt"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
            if not wait(lambda: not toxics(url), 30, 0.005):
                raise SystemExit("drill halt: the toxic was still there 30 s after the halt")
            whole = time.monotonic() - started
            found = re.search(r"every fault healed ([\d.]+) s after the halt", out)
            if found is None:
                raise SystemExit(f"drill halt said: {out!r}")
            after_signal = float(found.group(1))  # its signal sent -> the run's heal done
        else:
            chaos.send_signal(signal.SIGINT if way == "SIGINT" else signal.SIGTERM)
            sent = time.monotonic()
            if not wait(lambda: not toxics(url), 30, 0.005):
                raise SystemExit(f"{way}: the toxic was still there 30 s after the halt")
            after_signal, whole = time.monotonic() - sent, None
        code = chaos.wait(120)
        if code != 1:
            raise SystemExit(f"{way}: the halted run exited {code}, expected 1 (verdict fail)")
        return after_signal, whole
    finally:
        if chaos.poll() is None:
            chaos.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="halts per way (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chaos-halt-") as tmp:
        work = Path(tmp)
        os.environ["DRILL_STATE_DIR"] = str(work / "state")
        (work / "state").mkdir()
        env = {**os.environ}
        lab = subprocess.Popen(
            [*DRILL, "lab", "up"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        try:
            lines = []
            for line in lab.stdout:
                lines.append(line)
                if line.startswith("}"):
                    break
            url = json.loads("".join(lines))["endpoints"]["toxiproxy"]
            plan = work / "halt.yaml"
            plan.write_text(yaml.safe_dump(PLAN))
            figures: dict[str, list[tuple[float, float | None]]] = {}
            for way in ("drill halt", "SIGINT", "SIGTERM"):
                figures[way] = [one(way, url, plan, env, work) for _ in range(args.runs)]
        finally:
            lab.send_signal(signal.SIGTERM)
            lab.wait(60)
    print(f"chaos halt: time from the halt to the fault server listing no toxic ({args.runs} runs each)")
    print(f"{'way':12} {'median':>8} {'max':>8}   from `drill halt` started (median, max)")
    for way, runs in figures.items():
        after = [r[0] for r in runs]
        line = f"{way:12} {statistics.median(after):7.3f}s {max(after):7.3f}s"
        if runs[0][1] is not None:
            whole = [r[1] for r in runs]
            line += f"   {statistics.median(whole):.3f}s, {max(whole):.3f}s"
        print(line)
    worst = max(r[0] for runs in figures.values() for r in runs)
    print(f"worst {worst:.3f} s; target 1 s: {'met' if worst <= 1.0 else 'MISSED'}")
    return 0 if worst <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
