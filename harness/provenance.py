"""What a drill ran on and with: the environment class, the system's and the harness's versions,
the plan's digest. A CAB reads them on page 1; "since last run" compares them."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import requests

from . import __version__

REPO = Path(__file__).resolve().parents[1]
CLASSES = {
    "embedded": "embedded lab: local processes, not production evidence",
    "testcontainers": "containers: a lab of local containers, not production evidence",
}


@functools.lru_cache(maxsize=1)
def harness_commit() -> str | None:
    """The harness checkout's commit (12 hex digits, "+dirty" with uncommitted changes), or None
    when it is not a git checkout (an installed package)."""
    if not (REPO / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def harness() -> dict[str, Any]:
    return {"version": __version__, "commit": harness_commit()}


def version_text() -> str:
    commit = harness_commit()
    return f"drill {__version__}" + (f" (commit {commit})" if commit else "")


def environment_class(describe: dict[str, Any]) -> str:
    provider = describe.get("provider")
    if provider == "external":
        return f"external: {describe.get('target') or describe.get('api') or 'unnamed target'}"
    return CLASSES.get(str(provider), f"unknown provider {provider!r}")


def system_version(api_url: str | None) -> str | None:
    """The version the system under drill reports on /health/live: a label for the report and for
    "what changed since last run", never evidence for a gate."""
    if not api_url:
        return None
    try:
        answer = requests.get(api_url.rstrip("/") + "/health/live", timeout=3)
        version = answer.json().get("version") if answer.ok else None
    except (requests.RequestException, ValueError, AttributeError):
        return None
    return str(version)[:80] if version else None


def file_digest(path: str | Path) -> str | None:
    """sha256 hex of a file's bytes, None when it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None
