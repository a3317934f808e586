"""Wall time of the embedded lab's cold start and of the whole quarterly database drill.

Run from the repository root: python benchmarks/database_drill.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.lab.embedded import EmbeddedLab

ROOT = Path(__file__).resolve().parents[1]
STARTS = 3


def lab_cold_starts() -> tuple[list[float], list[float]]:
    ups, downs = [], []
    for _ in range(STARTS):
        lab = EmbeddedLab()
        start = time.perf_counter()
        try:
            lab.up()
            ups.append(time.perf_counter() - start)
        finally:
            start = time.perf_counter()
            lab.down()
            downs.append(time.perf_counter() - start)
    return ups, downs


def quarterly_drill() -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "harness.cli", "run", "drills/quarterly-database.yaml",
                                 "--out", f"{tmp}/out", "--cab-log", f"{tmp}/cab.jsonl"],
                                cwd=ROOT, capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - start
        if result.returncode not in (0, 1):
            raise SystemExit(f"drill failed to run:\n{result.stderr}")
        return wall, json.loads(Path(f"{tmp}/out/results.json").read_text())


def main() -> None:
    ups, downs = lab_cold_starts()
    print(f"embedded lab cold start ({STARTS} runs): median {statistics.median(ups):.2f} s, "
          f"max {max(ups):.2f} s (target < 15 s); down median {statistics.median(downs):.2f} s")
    wall, results = quarterly_drill()
    scenario = results["scenarios"][0]
    m, phases = scenario["measurements"], scenario["phases"]
    print(f"quarterly database drill, whole command: {wall:.1f} s wall, verdict {results['verdict']}")
    print(f"  RTO {m['rto_seconds']} s (detect {phases.get('detect')} s, promote {phases.get('promote')} s, "
          f"reconnect {phases.get('reconnect')} s), RPO {m['rpo_seconds']} s, lost writes {m['lost_writes']}, "
          f"acknowledged writes {m.get('acknowledged_writes')}")


if __name__ == "__main__":
    main()
