"""The record's commands run as a user runs them, on output folders the runner's own
write_outputs writes from results built here (no lab)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cab.ledger import load_key
from harness.model import DrillResult
from harness.plan import load_plan
from harness.report.record import Recording, complete, write_outputs
from harness.signoff import SignOff

ROOT = Path(__file__).resolve().parents[2]
DRILL = [sys.executable, "-m", "harness.cli"]


class NoLab:
    api_url = None


def drill(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DRILL, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, **(env or {})}
    )


@pytest.fixture
def recorded(tmp_path):
    """Two drills of the database plan, recorded as the runner records them."""
    key_path = tmp_path / "cab.key"
    key_path.write_text(os.urandom(32).hex())
    plan = load_plan(ROOT / "drills" / "quarterly-database.yaml", root=ROOT)
    rec = Recording(
        tmp_path / "cab.jsonl",
        key=load_key(key_path),
        signoff=SignOff(owner="Platform SRE", change_ticket="CHG1", operator="ops"),
    )
    dirs = []
    for n, (verdict, rto) in enumerate((("fail", 40000.0), ("pass", 1.5))):
        result = DrillResult.from_json(
            {
                "drill": plan.drill,
                "title": plan.title,
                "ha_domain": "database",
                "verdict": verdict,
                "finished_at": f"2026-0{4 + 3 * n}-01T06:00:00+00:00",
                "targets": dict(plan.targets),
                "environment": {"provider": "embedded"},
                "scenarios": [
                    {
                        "name": "crash",
                        "feature": "database/primary_failover.feature",
                        "verdict": verdict,
                        "matrix_row": {"number": 2, "component": "Database", "failure": "Primary unavailable"},
                        "measurements": {"rto_seconds": rto, "rpo_seconds": 0.0, "lost_writes": 0},
                        "gates": [
                            {
                                "id": "rto_seconds",
                                "description": "RTO",
                                "verdict": verdict,
                                "measured": rto,
                                "threshold": "<= 28800 s",
                                "operator": "<=",
                                "limit": 28800.0,
                                "unit": "s",
                            }
                        ],
                    }
                ],
            }
        )
        complete(result, plan, NoLab(), rec)
        out = tmp_path / f"out{n}"
        write_outputs(result, plan, out, rec, log=lambda *a, **k: None)
        dirs.append(out)
    return {"dirs": dirs, "args": ["--cab-log", str(rec.cab_log), "--cab-key", str(key_path)], "log": rec.cab_log}
