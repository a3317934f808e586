"""results.json: the runner's results dict, pretty-printed, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.files import atomic_write_text, plain
from harness.model import DrillResult

SCHEMA_VERSION = 4
FILENAME = "results.json"


def results_text(result: DrillResult) -> str:
    """The JSON text: indent 2, key order as given except each scenario's measurements, sorted.

    NaN and infinities become null (unknown), so the file is strict JSON.
    """
    data = plain(result.to_json())
    data.setdefault("schema_version", SCHEMA_VERSION)
    for scenario in data.get("scenarios") or ():
        if isinstance(scenario.get("measurements"), dict):
            scenario["measurements"] = dict(sorted(scenario["measurements"].items()))
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_results(result: DrillResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write `out_dir/results.json` atomically; returns its path."""
    return atomic_write_text(Path(out_dir) / FILENAME, results_text(result))
