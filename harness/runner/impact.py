"""What a plan's scenarios will touch, known before anything runs (blast radius, dry runs)."""

from __future__ import annotations

import re
from pathlib import Path

STEP = re.compile(r"^\s*(Given|When|Then|And|But)\s+(.+?)\s*$")


def feature_steps(path: Path) -> list[str]:
    """The step sentences of a .feature file, in order (keywords dropped)."""
    return [m.group(2) for line in path.read_text(encoding="utf-8").splitlines()
            if (m := STEP.match(line))]


def fault_targets(features: list[Path], targets_by_step: dict[str, str]) -> dict[str, list[str]]:
    """{target: [steps that touch it]} for every destructive step of the features."""
    touched: dict[str, list[str]] = {}
    for path in features:
        for step in feature_steps(path):
            if step in targets_by_step:
                touched.setdefault(targets_by_step[step], []).append(f"{path.name}: {step}")
    return touched


def outside_blast_radius(features: list[Path], targets_by_step: dict[str, str],
                         radius: tuple[str, ...]) -> list[str]:
    """One line per fault whose target is not in the blast radius (empty: all allowed)."""
    return [f"{step} -> {target}" for target, steps in fault_targets(features, targets_by_step).items()
            if target not in radius for step in steps]
