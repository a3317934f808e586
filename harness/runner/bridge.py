"""Runs .feature files through pytest-bdd in this process, with the drill's steps and one
DrillPlugin object per run that hands each step its `scenario` (a fixture) and closes it."""

from __future__ import annotations

import contextlib
import signal
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from ..faults.refused import FaultNotInjected
from ..lab import reaper
from .common import finish
from .scenario import DrillRun, Scenario


class DrillPlugin:
    """The pytest side of one drill run: fixtures `drill` and `scenario`, scenario selection by the
    plan's tags in the plan's order, and the journal of each scenario (begin, steps, finish)."""

    def __init__(self, run: DrillRun, interrupted: list):
        self.run = run
        self.interrupted = interrupted  # filled by the SIGINT handler: heal, then stop at once

    @pytest.fixture
    def drill(self) -> DrillRun:
        return self.run

    @pytest.fixture
    def scenario(self) -> Scenario:
        current = self.run.current
        if current is None or current.finished_at is not None:
            raise RuntimeError("no scenario is running")
        return current

    def pytest_collection_modifyitems(self, config, items):
        """Keep only the scenarios whose tags match the plan's tag expression, in the order of the
        plan's feature files (for a tag expression: the failure-modes matrix's row order)."""
        from pytest_bdd.scenario import scenario_wrapper_template_registry

        from ..tags import matches

        def scenario_of(item):
            return scenario_wrapper_template_registry.get(getattr(item, "obj", None))

        keep, drop = [], []
        for item in items:
            found = scenario_of(item)
            tags: set[str] = set()
            if found is not None:
                tags = set(found.tags) | set(getattr(found.feature, "tags", ()))
                if getattr(found, "rule", None) is not None:
                    tags |= set(found.rule.tags)
            (keep if not self.run.tags or matches(self.run.tags, tags) else drop).append(item)
        order = {path: i for i, path in enumerate(self.run.feature_order)}

        def position(item) -> int:
            filename = getattr(getattr(scenario_of(item), "feature", None), "filename", "")
            return order.get(str(filename), len(order))

        items[:] = sorted(keep, key=position)  # stable: a feature's scenarios keep their order
        if drop:
            config.hook.pytest_deselected(items=drop)

    def pytest_bdd_before_scenario(self, request, feature, scenario):
        tags = sorted(set(scenario.tags) | set(feature.tags))
        name = feature.rel_filename if hasattr(feature, "rel_filename") else feature.filename
        began = self.run.begin(scenario.name, name, tags, (getattr(feature, "description", "") or "").strip())
        began.steps_total = len(scenario.steps)

    def pytest_bdd_after_step(self, request, feature, scenario, step, step_func, step_func_args):
        self.run.current.steps_done += 1

    def pytest_bdd_step_error(self, request, feature, scenario, step, step_func, step_func_args, exception):
        if isinstance(exception, FaultNotInjected):  # could not act: not a failure of the system
            self.run.current.error = f"not run: step '{step.keyword} {step.name}': {exception}"
            return
        self.run.current.error = f"step '{step.keyword} {step.name}' failed: {type(exception).__name__}: {exception}"

    def pytest_bdd_after_scenario(self, request, feature, scenario):
        current = self.run.current
        if current.error is None and current.steps_done < current.steps_total:
            current.error = f"stopped after {current.steps_done} of {current.steps_total} steps"
        finish(current, interrupted=bool(self.interrupted))


def run_features(run: DrillRun, features: list[Path], quiet: bool = True) -> int:
    """Execute every scenario of `features` against run.lab; returns pytest's exit code.

    Verdicts come from the checkers the steps state, not from pytest's pass/fail: a failing step
    only leaves its scenario's remaining rules unstated (and the scenario unable to pass)."""
    # the temp dir is registered, so that the next run removes it if this one is killed
    with (
        tempfile.TemporaryDirectory(prefix="drill-scenarios-") as tmp,
        contextlib.closing(reaper.Registration(f"scenarios-{uuid.uuid4().hex}", "scenarios")) as registration,
    ):
        registration.add_dir(tmp)
        module = Path(tmp) / f"test_drill_{uuid.uuid4().hex[:12]}.py"
        paths = ", ".join(repr(str(f.resolve())) for f in features)
        module.write_text(f"from pytest_bdd import scenarios\n\nscenarios({paths})\n")
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\nfilterwarnings =\n    ignore::pytest.PytestUnknownMarkWarning\n")
        args = [
            str(module),
            "-c",
            str(ini),
            "--rootdir",
            tmp,
            "--import-mode=importlib",
            "-p",
            "harness.steps.plugin",
            "-p",
            "no:cacheprovider",
        ]
        # quiet: the drill prints its own summary; a failing step is in the results as an error
        args += ["-p", "no:terminal"] if quiet else ["-vv", "--no-header", "-rN", "--gherkin-terminal-reporter"]
        interrupted = []

        def on_sigint(signum, frame):
            # remembered here too: a KeyboardInterrupt can be swallowed on its way up
            interrupted.append(signum)
            raise KeyboardInterrupt

        run.feature_order = [str(f.resolve()) for f in features]
        main_thread = threading.current_thread() is threading.main_thread()
        # SIGTERM (what CI runners and schedulers send) is Ctrl-C: faults healed, lab down
        previous = (
            {sig: signal.signal(sig, on_sigint) for sig in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
        )
        try:
            code = pytest.main(args, plugins=[DrillPlugin(run, interrupted)])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if interrupted or code == pytest.ExitCode.INTERRUPTED:
        raise KeyboardInterrupt  # Ctrl-C during a scenario: faults were healed by its teardown
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        raise RuntimeError(f"the scenario runner failed (pytest exit code {int(code)})")
    return int(code)
