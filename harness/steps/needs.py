"""What each step of the scenarios needs of a lab, known before anything runs.

A lab provider declares its capabilities (`Lab.capabilities()`); a plan whose selected scenarios
have a step needing one the lab lacks is refused before the lab starts, naming the matrix row
(the feature's title), the step and the missing capability, never half-run. Each step declares
what it needs once, where it is written (`drill_step(..., needs=...)`, harness.steps.registry);
a step that declares nothing needs only the API, the lab's steady-state checks, the fault
journal's heal and reads of the database nodes, which every provider has.
tests/unit/test_needs.py keeps every sentence of scenarios/ matched by a registered step.
"""

from __future__ import annotations

from pathlib import Path

from ..lab.base import CAPABILITIES
from .impact import feature_lines
from .registry import matching


def step_needs(step: str, kind: str | None = None) -> tuple[str, ...]:
    """The capabilities a step sentence needs (none for a step that declares none, or no step)."""
    found = matching(step, kind)
    return found.needs if found else ()


def classified(step: str, kind: str | None = None) -> bool:
    """A registered step matches the sentence (its needs are known)."""
    return matching(step, kind) is not None


def feature_title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("Feature:"):
            return line.strip()[len("Feature:") :].strip()
    return path.stem


def missing_capabilities(
    features: list[Path], have: frozenset[str] | set[str], expression: str | None = None
) -> list[str]:
    """One line per matrix row (feature) that needs what the lab lacks: the row, its file, what it
    needs and the first step that needs it. Empty: every row can run."""
    lines = []
    for path in features:
        lacking: dict[str, str] = {}
        for kind, step in feature_lines(path, expression):
            for cap in step_needs(step, kind):
                if cap not in have:
                    lacking.setdefault(cap, step)
        if lacking:
            what = "; ".join(f"{CAPABILITIES[cap]} (capability {cap}, step '{step}')" for cap, step in lacking.items())
            lines.append(f"row '{feature_title(path)}' ({path.parent.name}/{path.name}) needs {what}")
    return lines
