"""What a plan's scenarios will touch, known before anything runs (blast radius, dry runs).

A feature is read with pytest-bdd's own parser (the grammar the run uses) and each line is matched
by the registered step's own matcher (harness.steps.registry); what a step touches is declared
once, on the step, as provider-independent symbols that the lab turns into its own names
(`Lab.fault_targets()`)."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd.exceptions import GherkinParseError
from pytest_bdd.parser import FeatureParser

from ..inputs import InputError, printable
from ..lab.targets import TargetNames, same_names
from ..tags import matches
from . import plugin as _vocabulary  # noqa: F401 - registers every step
from .registry import matching


def feature_lines(path: Path, expression: str | None = None) -> list[tuple[str, str]]:
    """(kind, sentence) of each step line of a .feature file, in order, as pytest-bdd reads them
    (And/But take the kind before them): the Background's, then those of the scenarios the tag
    expression selects (all without one); a scenario's tags include its feature's. A file
    pytest-bdd cannot parse is refused (InputError, exit 2); one without a Feature has no steps."""
    try:
        feature = FeatureParser(str(path.parent), path.name).parse()
    except GherkinParseError as exc:
        raise InputError(
            f"{printable(str(path))}: not a feature pytest-bdd can read: {printable(' '.join(str(exc).split()), 200)}"
        ) from exc
    except KeyError:  # pytest-bdd 9 reads a file without a Feature as KeyError('feature')
        return []
    lines = [(s.type, s.name) for s in feature.background.steps] if feature.background else []
    for scenario in feature.scenarios.values():
        if expression is None or matches(expression, feature.tags | scenario.tags):
            own = scenario.steps[len(scenario.all_background_steps) :]
            lines += [(s.type, s.name) for s in own]
    return lines


def feature_steps(path: Path, expression: str | None = None) -> list[str]:
    """The step sentences of a .feature file, in order (keywords dropped): see feature_lines."""
    return [sentence for _, sentence in feature_lines(path, expression)]


def step_targets(step: str, names: TargetNames = same_names, kind: str | None = None) -> list[str]:
    """What a step sentence touches, by the lab's names (`Lab.fault_targets()`): the symbols its
    registered step declares; [] when it touches nothing (or no step matches it)."""
    found = matching(step, kind)
    return found.targets(step, names) if found else []


def fault_targets(
    features: list[Path], names: TargetNames = same_names, expression: str | None = None
) -> dict[str, list[str]]:
    """{target: [steps that touch it]} for every destructive step of the features' scenarios the
    tag expression selects."""
    touched: dict[str, list[str]] = {}
    for path in features:
        for kind, step in feature_lines(path, expression):
            for target in step_targets(step, names, kind):
                touched.setdefault(target, []).append(f"{path.name}: {step}")
    return touched


def outside_blast_radius(
    features: list[Path], names: TargetNames, radius: tuple[str, ...], expression: str | None = None
) -> list[str]:
    """One line per fault of the selected scenarios whose target is not in the blast radius
    (empty: all allowed)."""
    return [
        f"{step} -> {target}"
        for target, steps in fault_targets(features, names, expression).items()
        if target not in radius
        for step in steps
    ]
