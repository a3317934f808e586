"""A shipped scenario cut after one of its steps: for a negative judged only on the steps before."""

from __future__ import annotations

from pathlib import Path

SCENARIO_START = ("@", "Scenario:", "Scenario Outline:", "Example:", "Rule:")


def scenario_until(feature: Path, last_step: str, folder: Path) -> Path:
    """`feature`'s own lines, the scenario holding the one step line containing `last_step` ending
    at that step (the file's other scenarios kept whole), written to `folder`.

    A negative whose gates are all stated by then runs only that part: taken from the shipped
    file (its tags, description and sentences), never a copy of it. The steps left out would only
    wait for a misbehaving lab's recovery, which the negative does not judge."""
    lines = feature.read_text().splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if last_step in line]
    assert len(found) == 1, f"{feature}: {len(found)} lines say {last_step!r}, not one"
    cut = found[0] + 1
    # the next scenario's first line (its tags, or its keyword), or the end of the file
    rest = next((i for i in range(cut, len(lines)) if lines[i].strip().startswith(SCENARIO_START)), len(lines))
    path = folder / f"{feature.stem}-until-{found[0] + 1}.feature"
    path.write_text("".join(lines[:cut] + ["\n"] * (rest < len(lines)) + lines[rest:]))
    return path
