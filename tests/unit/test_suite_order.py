"""The suite's schedule on two workers: the slowest modules first, in collection order, and the
provider contract in one module per provider (so that the three providers run side by side)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import SLOWEST_FIRST, slowness_rank
from tests.integration.provider_contract import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def test_every_module_named_slowest_first_exists_once():
    missing = [m for m in SLOWEST_FIRST if not (TESTS / m).is_file()]
    assert missing == [], f"renamed or removed: {missing}; update tests/conftest.py SLOWEST_FIRST"
    assert len(set(SLOWEST_FIRST)) == len(SLOWEST_FIRST)


def test_run_test_keeps_whole_modules_in_collection_order():
    """Without --no-loadscope-reorder xdist orders modules by their number of tests, whatever the
    collection order: the few-test, slowest modules would start last."""
    case = re.search(r"^\s*test\)(.*?);;", (ROOT / "run").read_text(), re.M | re.S)
    assert case, "no test) case in ./run"
    assert "--dist loadfile" in case.group(1) and "--no-loadscope-reorder" in case.group(1)


def test_collection_puts_the_slowest_modules_first_and_keeps_the_rest_in_order():
    assert slowness_rank(TESTS / SLOWEST_FIRST[0]) == 0
    assert slowness_rank(TESTS / "unit" / "test_plan.py") == len(SLOWEST_FIRST)
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/unit/test_tags.py",
            "tests/integration/test_event_store.py",
            "tests/unit/test_plan.py",
            "tests/integration/test_api_tier.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    modules = list(dict.fromkeys(line.split("::")[0] for line in listed.stdout.splitlines() if "::" in line))
    assert modules == [
        "tests/integration/test_api_tier.py",
        "tests/integration/test_event_store.py",
        "tests/unit/test_tags.py",
        "tests/unit/test_plan.py",
    ]


def test_each_provider_has_its_own_contract_module():
    named = {}
    for module in sorted((TESTS / "integration").glob("test_provider_contract_*.py")):
        found = re.findall(r'^PROVIDER = "([^"]+)"$', module.read_text(), re.M)
        assert len(found) == 1, module
        named.setdefault(found[0], []).append(module.name)
    assert sorted(named) == sorted(PROVIDERS) and all(len(v) == 1 for v in named.values()), named
