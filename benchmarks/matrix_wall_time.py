"""The whole quarterly drill (drills/quarterly-full.yaml: every @quarterly scenario, the matrix
rows' and the HA domains' after-failover, connector failover and backup ones) on the embedded lab:
wall time of `drill run` (lab up, every scenario, reports, lab down), each scenario's share, its
RTO (on what its fault blocks), availability and error budget used, the matrix rows' subtotal.
Aim: under 3 minutes on 2 cores. Run from the repository root: python benchmarks/matrix_wall_time.py"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIM_S = 180.0


def seconds(a: str, b: str) -> float:
    return (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "drills/quarterly-full.yaml",
                               "--out", str(out), "--cab-log", str(Path(tmp) / "cab.jsonl")],
                              cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if not (out / "results.json").exists():
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        results = json.loads((out / "results.json").read_text())
    print(f"{'row':>3}  {'scenario':60} {'verdict':7} {'seconds':>7} {'RTO':>7} {'on':>13} "
          f"{'avail.':>8} {'budget used':>11} {'gates':>6}")
    for s in results["scenarios"]:
        row = (s.get("matrix_row") or {}).get("number", "-")
        m = s["measurements"]
        rto = "n/a" if m.get("rto_seconds") is None else f"{m['rto_seconds']:.2f}s"
        avail = "n/a" if m.get("availability") is None else f"{m['availability']:.2%}"
        used = "n/a" if m.get("error_budget_used_s") is None else f"{m['error_budget_used_s']:.2f}s"
        print(f"{row!s:>3}  {s['name'][:60]:60} {s['verdict']:7} {seconds(s['started_at'], s['finished_at']):7.1f} "
              f"{rto:>7} {m.get('rto_measured_on', '-'):>13} {avail:>8} {used:>11} {len(s['gates']):>6}")
    scenarios = sum(seconds(s["started_at"], s["finished_at"]) for s in results["scenarios"])
    rows = [s for s in results["scenarios"] if s.get("matrix_row")]
    in_rows = sum(seconds(s["started_at"], s["finished_at"]) for s in rows)
    print(f"\nmatrix rows' scenarios: {len(rows)} in {in_rows:.1f} s; the HA domains' after-failover, "
          f"connector failover and backup scenarios: {len(results['scenarios']) - len(rows)} in "
          f"{scenarios - in_rows:.1f} s")
    print(f"rows covered: {sorted({(s.get('matrix_row') or {}).get('number') for s in results['scenarios']} - {None})}")
    print(f"scenarios: {len(results['scenarios'])}, verdict {results['verdict']}, exit {done.returncode}")
    print(f"wall time of `drill run`: {wall:.1f} s (scenarios {scenarios:.1f} s, lab and reports "
          f"{wall - scenarios:.1f} s); aim {AIM_S:.0f} s: ratio {wall / AIM_S:.2f}")
    return 0 if done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
