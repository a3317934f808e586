"""What a plan's scenarios will touch, known before anything runs (blast radius, dry runs)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Union

from .tags import matches

STEP = re.compile(r"^\s*(Given|When|Then|And|But)\s+(.+?)\s*$")

# what a destructive step touches: a name, several, or a function of the step's match; a name
# may use the pattern's groups (\g<platform>)
Targets = Union[str, tuple, list, Callable[[re.Match], str | tuple | list]]


def feature_steps(path: Path, expression: str | None = None) -> list[str]:
    """The step sentences of a .feature file, in order (keywords dropped): of the scenarios the
    tag expression selects (all without one), with the Background's; a scenario's tags include
    its feature's."""
    feature_tags: set[str] = set()
    pending: set[str] = set()
    selected, steps = True, []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text.startswith("@"):
            pending |= set(text.split())
        elif text.startswith("Feature:"):
            feature_tags, pending, selected = pending, set(), True
        elif text.startswith("Background:"):
            selected = True
        elif text.startswith(("Scenario:", "Scenario Outline:", "Example:")):
            selected = expression is None or matches(expression, feature_tags | pending)
            pending = set()
        elif selected and (m := STEP.match(line)):
            steps.append(m.group(2))
    return steps


def step_targets(step: str, targets_by_step: Mapping[str, Targets]) -> list[str]:
    """What a step touches: the targets of the first key that is the step itself or a regular
    expression matching the whole sentence (steps are parametrized: "the API instance in az1 is
    killed"); [] when no key matches (the step does no harm)."""
    for key, targets in targets_by_step.items():
        if key == step:
            match = re.fullmatch(re.escape(step), step)
        else:
            try:
                match = re.fullmatch(key, step)
            except re.error:
                continue
        if match is None:
            continue
        if callable(targets):
            targets = targets(match)
        names = [targets] if isinstance(targets, str) else list(targets)
        return [match.expand(name) if "\\" in name else name for name in names]
    return []


def fault_targets(features: list[Path], targets_by_step: Mapping[str, Targets],
                  expression: str | None = None) -> dict[str, list[str]]:
    """{target: [steps that touch it]} for every destructive step of the features' scenarios the
    tag expression selects."""
    touched: dict[str, list[str]] = {}
    for path in features:
        for step in feature_steps(path, expression):
            for target in step_targets(step, targets_by_step):
                touched.setdefault(target, []).append(f"{path.name}: {step}")
    return touched


def outside_blast_radius(features: list[Path], targets_by_step: Mapping[str, Targets],
                         radius: tuple[str, ...], expression: str | None = None) -> list[str]:
    """One line per fault of the selected scenarios whose target is not in the blast radius
    (empty: all allowed)."""
    return [f"{step} -> {target}" for target, steps in fault_targets(features, targets_by_step, expression).items()
            if target not in radius for step in steps]
