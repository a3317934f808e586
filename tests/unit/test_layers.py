"""The layers of harness/ hold (pyproject.toml [tool.importlinter], run by ./run lint): no import cycle
between sibling packages or modules at any depth, and no module importing a layer above its own."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_harness_has_no_import_cycle_and_no_import_upward():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in done.stdout, done.stdout[-4000:]


def test_the_contracts_let_no_import_through():
    """No ignore list: every import of harness/ is held to the layers and to acyclicity (the last
    ones, lab -> faults for the replication cut, went with harness.faults.replication)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = pyproject["tool"]["importlinter"]["contracts"]
    assert [c["id"] for c in contracts] == ["acyclic", "layers"]
    assert all(not c.get("ignore_imports") for c in contracts), [c.get("ignore_imports") for c in contracts]
