"""The error and config toolkit at the bottom of the layers: the errors every layer raises
(PlanError: an invalid plan; LabStartError: a lab that could not start; FaultError: a
fault spec or target that cannot be used) and the small helpers a
config parser uses to name a value in a message (quoted, shown) and to collect independent errors
(collector, checked). It imports nothing of the harness but harness.inputs."""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable
from typing import Any

from .inputs import printable

MAX_QUOTED = 60  # characters of a value quoted in a message
MAX_PATH_SHOWN = 160  # characters of a path named in a message


class PlanError(ValueError):
    """An invalid plan: the message names the file, the key and the fix."""


class FaultError(ValueError):
    """A fault spec is invalid, or its target does not exist. Raised before any harm is done."""


class LabStartError(RuntimeError):
    """The lab could not start; the message names what failed and the fix (exit code 2)."""


class _Repr(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother = 3, MAX_QUOTED, MAX_QUOTED

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 200:  # ~60 digits; past 4300 repr() itself raises
            return f"<an integer of about {int(x.bit_length() * math.log10(2)) + 1} digits>"
        return repr(x)


_REPR = _Repr()


def quoted(value: Any, limit: int = MAX_QUOTED) -> str:
    """repr(value) for a message, at most `limit` characters, computed without walking a huge
    value (a YAML alias bomb is a small graph of shared lists that repr() would expand)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(path: Any) -> str:
    """A path as a message names it: control characters escaped, a very long one shortened."""
    text = printable(path)
    if len(text) > MAX_PATH_SHOWN:
        text = text[: MAX_PATH_SHOWN - 40] + "..." + text[-37:]
    return text


def collector(errors: list | None) -> Callable[[PlanError], None]:
    """What a parser calls with each error of an independent check: raise it (errors None, the
    first error stops the parse) or append it to `errors` and go on (`drill validate`)."""

    def add(exc: PlanError) -> None:
        if errors is None:
            raise exc
        errors.append(exc)

    return add


def checked(add: Callable[[PlanError], None], parse: Callable[..., Any], *args: Any, default: Any = None) -> Any:
    """parse(*args), or `default` after add() took its PlanError."""
    try:
        return parse(*args)
    except PlanError as exc:
        add(exc)
        return default
