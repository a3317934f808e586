"""`pip install .` (not editable, no extras) in a fresh venv gives a working `drill`: its runtime
dependencies are declared and its templates ship as package data. Built from a copy of the
working tree, so the checkout gets no build/ folder; installed from PyPI (or the machine's pip
configuration), as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import __version__
from harness.cab.ledger import append_cab_record, load_key
from harness.report.manifest import write_manifest

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".venv", ".git", "build", "*.egg-info", "__pycache__", "out", ".pytest_cache", "cab-log.jsonl", "schedule.sqlite*"
)

pytestmark = pytest.mark.timeout(900)


def run(*args, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=SKIP)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", source, cwd=work)
    (wheel,) = (work / "dist").glob("*.whl")
    # A venv without pip of its own, filled by this pip (--python), and no byte-compiling of the
    # dependencies (botocore and moto: half the install's time): what is installed is the same;
    # Python compiles what `drill` imports when it runs.
    run(sys.executable, "-m", "venv", "--without-pip", work / "venv", cwd=work)
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        work / "venv" / "bin" / "python",
        "install",
        "-q",
        "--no-compile",
        wheel,
        cwd=work,
    )
    return work


def test_the_installed_drill_says_its_version_and_its_steps(installed):
    drill = installed / "venv" / "bin" / "drill"
    elsewhere = installed / "elsewhere"
    elsewhere.mkdir()
    assert run(drill, "--version", cwd=elsewhere).stdout.strip() == f"drill {__version__}"  # no checkout: no commit
    steps = run(drill, "steps", cwd=elsewhere).stdout
    assert "Given" in steps and "the database primary is killed" in steps


def test_the_installed_drill_renders_reports_from_its_packaged_templates(installed):
    drill = installed / "venv" / "bin" / "drill"
    out = installed / "out"
    out.mkdir()
    (out / "results.json").write_text(
        json.dumps(
            {
                "schema_version": 3,
                "drill": "packaged",
                "title": "Packaged templates",
                "verdict": "pass",
                "scenarios": [
                    {
                        "name": "s",
                        "verdict": "pass",
                        "measurements": {"rto_seconds": 1.0},
                        "gates": [{"id": "rto_seconds", "verdict": "pass", "measured": 1.0}],
                    }
                ],
            }
        )
    )
    (installed / "cab.key").write_text(os.urandom(32).hex())
    # sealed and recorded as a drill leaves it: `drill report` rebuilds only what `drill verify` finds intact
    digest = write_manifest(out, {"drill": "packaged"})
    append_cab_record(
        installed / "cab.jsonl",
        {"kind": "drill", "drill": "packaged", "out_dir": str(out.resolve()), "manifest": digest},
        load_key(installed / "cab.key"),
    )
    record = ["--cab-log", installed / "cab.jsonl", "--cab-key", installed / "cab.key"]
    run(drill, "report", out, *record, cwd=installed)
    assert "Packaged templates" in (out / "report.html").read_text()
    run(drill, "history", "--html", installed / "history.html", *record, cwd=installed)
    assert (installed / "history.html").read_text().count('<svg class="chart"') == 6
