"""drill validate's check of one plan file, a drill plan or a chaos plan: above both parsers, so
neither imports the other."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .chaos.plan import parse_chaos_plan
from .errors import PlanError
from .plan import parse_plan, parse_yaml, read_source


def check_plan_file(path: str | Path, root: Path) -> tuple[str, list[PlanError]]:
    """(what the file is: "drill", "chaos" or "plan" when it cannot be read as either; every
    error of it, none when valid), running nothing. A YAML mapping with a `chaos` key is a chaos
    plan (drills/chaos/), any other document a drill plan. Feature paths resolve against `root`."""
    path = Path(path)
    errors: list[PlanError] = []
    try:
        data = parse_yaml(read_source(path, "no such plan file"), path)
    except PlanError as exc:
        return "plan", [exc]
    parse: Callable[[], object]
    if isinstance(data, dict) and "chaos" in data:
        kind, parse = "chaos", lambda: parse_chaos_plan(data, path, errors)
    else:
        kind, parse = "drill", lambda: parse_plan(data, path, root, errors)
    try:
        parse()
    except PlanError:
        pass
    return kind, errors
