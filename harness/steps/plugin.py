"""pytest plugin that runs .feature scenarios as drills: the `drill` fixture, scenario journal hooks,
and the steps (imported below so pytest-bdd finds them as fixtures)."""

from __future__ import annotations

import pytest

from ..runner import context
from ..runner.common import finish
from .api import *  # noqa: F401,F403  (step definitions)
from .common import *  # noqa: F401,F403
from .database import *  # noqa: F401,F403
from .evidence import *  # noqa: F401,F403
from .eventstore import *  # noqa: F401,F403
from .platforms import *  # noqa: F401,F403


@pytest.fixture
def drill() -> context.DrillContext:
    if context.ACTIVE is None:
        raise RuntimeError("no drill is active: run scenarios with `drill run PLAN.yaml`")
    return context.ACTIVE


def pytest_collection_modifyitems(config, items):
    """Keep only the scenarios whose tags match the plan's tag expression, in the order of the
    plan's feature files (for a tag expression: the failure-modes matrix's row order)."""
    from pytest_bdd.scenario import scenario_wrapper_template_registry

    from ..runner.tags import matches

    drill_ctx = context.ACTIVE
    if drill_ctx is None:
        return
    keep, drop = [], []
    for item in items:
        scenario = scenario_wrapper_template_registry.get(getattr(item, "obj", None))
        tags: set[str] = set()
        if scenario is not None:
            tags = set(scenario.tags) | set(getattr(scenario.feature, "tags", ()))
            if getattr(scenario, "rule", None) is not None:
                tags |= set(scenario.rule.tags)
        (keep if not drill_ctx.tags or matches(drill_ctx.tags, tags) else drop).append(item)
    order = {path: i for i, path in enumerate(drill_ctx.feature_order)}

    def position(item) -> int:
        scenario = scenario_wrapper_template_registry.get(getattr(item, "obj", None))
        filename = getattr(getattr(scenario, "feature", None), "filename", "")
        return order.get(str(filename), len(order))
    items[:] = sorted(keep, key=position)   # stable: a feature's scenarios keep their order
    if drop:
        config.hook.pytest_deselected(items=drop)


def pytest_bdd_before_scenario(request, feature, scenario):
    if context.ACTIVE is not None:
        tags = sorted(set(scenario.tags) | set(feature.tags))
        run = context.ACTIVE.begin(scenario.name, feature.rel_filename if hasattr(feature, "rel_filename")
                                   else feature.filename, tags)
        run.steps_total = len(scenario.steps)
        run.description = (getattr(feature, "description", "") or "").strip()


def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args):
    if context.ACTIVE is not None:
        context.ACTIVE.current.steps_done += 1


def pytest_bdd_step_error(request, feature, scenario, step, step_func, step_func_args, exception):
    if context.ACTIVE is not None:
        run = context.ACTIVE.current
        run.error = f"step '{step.keyword} {step.name}' failed: {type(exception).__name__}: {exception}"


def pytest_bdd_after_scenario(request, feature, scenario):
    if context.ACTIVE is None:
        return
    drill_ctx = context.ACTIVE
    run = drill_ctx.current
    if run.error is None and run.steps_done < run.steps_total:
        run.error = f"stopped after {run.steps_done} of {run.steps_total} steps"
    try:
        finish(drill_ctx, run)
    finally:
        for fault in run.state.get("faults", []):
            drill_ctx.lab.heal_fault(fault)
        run.finished_at = context.utc_now()
