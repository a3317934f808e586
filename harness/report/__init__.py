"""Drill outputs from a results dict: results.json, junit.xml, report.html and the CAB log."""

from __future__ import annotations

import os
from pathlib import Path

from harness.cab.ledger import CabLogCorrupt, append_cab_log, verify_cab_log
from harness.model import DrillResult
from harness.report.html import render_html, write_html
from harness.report.junit import write_junit
from harness.report.results_json import SCHEMA_VERSION, write_results


def write_all(result: DrillResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write results.json, junit.xml and report.html into `out_dir`, each atomically.

    Returns {"results": path, "junit": path, "html": path}. The CAB log is appended by the
    caller (append_cab_log) once these exist, so its line can name the report.
    """
    return {
        "results": write_results(result, out_dir),
        "junit": write_junit(result, out_dir),
        "html": write_html(result, out_dir),
    }


__all__ = [
    "SCHEMA_VERSION",
    "CabLogCorrupt",
    "append_cab_log",
    "render_html",
    "verify_cab_log",
    "write_all",
    "write_html",
    "write_junit",
    "write_results",
]
