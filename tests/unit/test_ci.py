""".ci/run, the CI entry point: `./run lint` (ruff, mypy, lint-imports) first, then the README's test
command (`./run test`), and a lint finding stops it before the tests. Run here on a copy of .ci/run beside
a stand-in `./run` that records what it is asked and fails when told to."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STAND_IN = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/calls"
[ "$1" != "${FAIL_ON:-}" ]
"""


def ci(tmp_path: Path, fail_on: str = "") -> tuple[int, list[str]]:
    (tmp_path / ".ci").mkdir()
    shutil.copy2(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "run").write_text(STAND_IN)
    (tmp_path / "run").chmod(0o755)
    done = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")],
        env={"PATH": "/usr/bin:/bin", "FAIL_ON": fail_on},
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = tmp_path / "calls"
    return done.returncode, calls.read_text().splitlines() if calls.exists() else []


def test_ci_lints_then_runs_the_readme_test_command(tmp_path):
    code, calls = ci(tmp_path)
    assert code == 0
    assert calls == ["lint", "test"]
    assert "./run test" in (ROOT / "README.md").read_text()  # the README's test command, the one CI runs


def test_a_lint_finding_stops_ci_before_the_tests(tmp_path):
    code, calls = ci(tmp_path, fail_on="lint")
    assert code != 0
    assert calls == ["lint"]


def test_a_failing_test_run_fails_ci(tmp_path):
    code, calls = ci(tmp_path, fail_on="test")
    assert code != 0
    assert calls == ["lint", "test"]
