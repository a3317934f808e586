"""How a value reads in a report: None is "unknown", floats are short, collections are lists."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any


def one_line(text: Any, limit: int = 300) -> str:
    """A message's first line, whole words only: what a report shows of a driver's error."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = " ".join(lines[0].split()) if lines else ""
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0] + " (...)"


def show(value: Any) -> str:
    """Human text of a measured value or threshold; None and NaN read "unknown"."""
    if value is None:
        return "unknown"
    if isinstance(value, Enum):
        return show(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "unknown" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(show(v) for v in value) if value else "none"
    if isinstance(value, dict):
        if not value:
            return "none"
        return ", ".join(f"{k} {show(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
    return str(value)


def human_seconds(value: Any) -> str:
    """Seconds as a person says them: 0.35 s, 12.3 s, 4 min 12 s, 8 h, 7 h 59 min."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        return "not measured"
    seconds = abs(float(value))
    if seconds < 60:
        text = f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.1f} s".replace(".0 s", " s")
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min" + (f" {int(round(seconds % 60))} s" if round(seconds % 60) else "")
    else:
        hours, minutes = int(seconds // 3600), int(round(seconds % 3600 / 60))
        if minutes == 60:
            hours, minutes = hours + 1, 0
        text = f"{hours} h" + (f" {minutes} min" if minutes else "")
    return ("-" if value < 0 else "") + text
