"""Runs .feature files through pytest-bdd in this process, with the drill's steps and context."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pytest

from . import context


def run_features(ctx: context.DrillContext, features: list[Path], quiet: bool = True) -> int:
    """Execute every scenario of `features` against ctx.lab; returns pytest's exit code.

    Verdicts come from the gates the steps record, not from pytest's pass/fail: a failing step
    only marks its scenario's remaining gates unknown."""
    with tempfile.TemporaryDirectory(prefix="drill-scenarios-") as tmp:
        module = Path(tmp) / f"test_drill_{uuid.uuid4().hex[:12]}.py"
        paths = ", ".join(repr(str(f.resolve())) for f in features)
        module.write_text(f"from pytest_bdd import scenarios\n\nscenarios({paths})\n")
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\nfilterwarnings =\n    ignore::pytest.PytestUnknownMarkWarning\n")
        args = [str(module), "-c", str(ini), "--rootdir", tmp, "--import-mode=importlib",
                "-p", "harness.steps.plugin", "-p", "no:cacheprovider", "--no-header",
                "-o", "console_output_style=classic", "-q" if quiet else "-v", "-rN"]
        previous, context.ACTIVE = context.ACTIVE, ctx
        try:
            return int(pytest.main(args))
        finally:
            context.ACTIVE = previous
