"""Atomic file output: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import math
import os
import re
import tempfile
from enum import Enum
from pathlib import Path
from typing import Any

from .redact import scrub


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to a temp file beside `path`, fsync it, then os.replace it into place.

    Creates the parent folder. On any error the temp file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # readable as the user's umask says, like any tool's output
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """atomic_write_bytes of `text` in UTF-8 (newlines as given); a lone surrogate (text that
    came from undecodable bytes) is written as U+FFFD rather than fail the whole file."""
    return atomic_write_bytes(path, no_surrogates(text).encode("utf-8"))


_SURROGATE = re.compile("[\ud800-\udfff]")
# a key whose value is a secret (its value is masked): password, secret, token, api key ...
# but not the name of where a secret is kept (password_env, token_file, secret_files)
_SECRET_KEY = re.compile(
    r"(?i)(password|passwd|secret|token|api_?key|apikey|credential|private_?key)"
    r"(?!.*_(env|file|files|path)$)"
)


def no_surrogates(text: str) -> str:
    """`text` encodable as UTF-8: a surrogate pair becomes its character, a lone surrogate U+FFFD."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def safe_text(text: str) -> str:
    """A string as the outputs hold it: valid UTF-8 (no_surrogates) and secrets masked (scrub)."""
    return scrub(no_surrogates(text))


def verdict_text(value: Any) -> str:
    """The verdict as pass, fail, waived or unknown, from a Verdict or a string; anything else is unknown."""
    text = str(getattr(value, "value", value) or "").lower()
    return text if text in ("pass", "fail", "waived") else "unknown"


def plain(value: Any) -> Any:
    """`value` as JSON-safe data: enums by value, tuples/sets as lists, NaN/inf as None (unknown),
    strings safe_text (valid UTF-8, secrets masked) and the string value of a secret-named key
    (password, token, ...) masked whole."""
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {
            safe_text(str(k)): "***" if isinstance(v, str) and v and _SECRET_KEY.search(str(k)) else plain(v)
            for k, v in value.items()
        }
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
