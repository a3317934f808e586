"""Atomic file output: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import math
import os
import tempfile
from enum import Enum
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` (UTF-8) to a temp file beside `path`, fsync it, then os.replace it into place.

    Creates the parent folder. On any error the temp file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def verdict_text(value: Any) -> str:
    """The verdict as pass, fail or unknown, from a Verdict or a string; anything else is unknown."""
    text = str(getattr(value, "value", value) or "").lower()
    return text if text in ("pass", "fail") else "unknown"


def plain(value: Any) -> Any:
    """`value` as JSON-safe data: enums by value, tuples/sets as lists, NaN/inf as None (unknown)."""
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [plain(v) for v in items]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def iter_gates(results: dict[str, Any]):
    """(classname, gate) for every gate: per scenario, then drill-level `results["gates"]` if any."""
    for scenario in results.get("scenarios") or ():
        for gate in scenario.get("gates") or ():
            yield str(scenario.get("name", "scenario")), gate
    for gate in results.get("gates") or ():
        yield str(results.get("drill", "drill")), gate
