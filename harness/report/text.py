"""How a value reads in a report: None is "unknown", floats are short, collections are lists."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any


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
        return ", ".join(f"{k} {show(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
    return str(value)
