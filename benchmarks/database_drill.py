"""Lab start and the whole quarterly database drill, per lab provider, printed side by side.

embedded: local processes; testcontainers: containers on Docker or Podman (skipped without an
engine); external: a lab started separately (`drill lab up`) driven through its endpoints and
runbook hooks, as staging would be. Run from the repository root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DRILL = [sys.executable, "-m", "harness.cli"]


def lab_start(provider: str) -> tuple[float, float]:
    if provider == "embedded":
        from harness.lab.embedded import EmbeddedLab as LabClass
    else:
        from harness.lab.containers import ContainerLab as LabClass
    lab = LabClass()
    start = time.perf_counter()
    try:
        lab.up()
        up = time.perf_counter() - start
    finally:
        start = time.perf_counter()
        lab.down()
    return up, time.perf_counter() - start


def run_plan(plan: Path, *extra: str, env: dict | None = None) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = subprocess.run(
            [*DRILL, "run", str(plan), "--out", f"{tmp}/out", "--cab-log", f"{tmp}/cab.jsonl", *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, **(env or {})},
        )
        wall = time.perf_counter() - start
        if result.returncode not in (0, 1):
            raise SystemExit(f"drill failed to run:\n{result.stderr}")
        return wall, json.loads(Path(f"{tmp}/out/results.json").read_text())


def external_drill() -> tuple[float, float, dict]:
    """`drill lab up` as staging, then the drill through the external provider."""
    from tests.integration.conftest import TOKEN_ENV, staging_lab_config, start_lab_up

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        process, staging = start_lab_up({"DRILL_STATE_DIR": f"{tmp}/state"})
        up = time.perf_counter() - start
        try:
            plan = {
                "drill": "staging-database",
                "title": "Staging database failover",
                "ha_domain": "database",
                "lab": staging_lab_config(staging),
                "scenarios": ["scenarios/database/primary_failover.feature"],
                "targets": {"rto_seconds": 600, "rpo_seconds": 60},
            }
            path = Path(tmp) / "staging.yaml"
            path.write_text(yaml.safe_dump(plan))
            token = Path(staging["secret_files"]["runbook-token"]).read_text()
            wall, results = run_plan(path, "--confirm", "staging-database", env={TOKEN_ENV: token})
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        return up, wall, results


def main() -> None:
    rows = []
    up, down = lab_start("embedded")
    wall, results = run_plan(ROOT / "drills" / "quarterly-database.yaml")
    rows.append(("embedded", up, down, wall, results))
    try:
        from harness.lab.engine import ContainerEngineUnavailable, find_engine

        find_engine().stop()
        up, down = lab_start("testcontainers")
        wall, results = run_plan(ROOT / "drills" / "quarterly-database-containers.yaml")
        rows.append(("testcontainers", up, down, wall, results))
    except ContainerEngineUnavailable as why:
        print(f"testcontainers: skipped ({why})")
    up, wall, results = external_drill()
    rows.append(("external (lab up as staging)", up, None, wall, results))

    print(
        f"{'provider':30} {'lab up':>8} {'down':>6} {'drill wall':>11} {'verdict':>8} {'RTO':>7} "
        f"{'detect':>7} {'promote':>8} {'RPO':>5} {'lost':>5}"
    )
    for name, up, down, wall, results in rows:
        s = results["scenarios"][0]
        m, p = s["measurements"], s["phases"]
        print(
            f"{name:30} {up:7.1f}s {('%5.1fs' % down) if down else '     -':>6} {wall:10.1f}s "
            f"{results['verdict']:>8} {m['rto_seconds']:6.2f}s {p.get('detect', 0):6.2f}s "
            f"{p.get('promote', 0):7.2f}s {m['rpo_seconds']:4.1f}s {m['lost_writes']:5d}"
        )


if __name__ == "__main__":
    main()
