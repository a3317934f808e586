"""Runs .feature files through pytest-bdd in this process, with the drill's steps and context."""

from __future__ import annotations

import signal
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
                "-p", "harness.steps.plugin", "-p", "no:cacheprovider"]
        # quiet: the drill prints its own summary; a failing step is in the results as an error
        args += ["-p", "no:terminal"] if quiet else ["-vv", "--no-header", "-rN", "--gherkin-terminal-reporter"]
        interrupted = []

        def on_sigint(signum, frame):
            # remembered here too: a KeyboardInterrupt can be swallowed on its way up
            interrupted.append(signum)
            raise KeyboardInterrupt

        ctx.feature_order = [str(f.resolve()) for f in features]
        previous, context.ACTIVE = context.ACTIVE, ctx
        previous_handler = signal.signal(signal.SIGINT, on_sigint)
        try:
            code = pytest.main(args)
        finally:
            signal.signal(signal.SIGINT, previous_handler)
            context.ACTIVE = previous
    if interrupted or code == pytest.ExitCode.INTERRUPTED:
        raise KeyboardInterrupt   # Ctrl-C during a scenario: faults were healed by its teardown
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        raise RuntimeError(f"the scenario runner failed (pytest exit code {int(code)})")
    return int(code)
