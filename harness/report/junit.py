"""junit.xml: one testsuite per drill, one testcase per gate per scenario (fail -> failure, unknown -> error)."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.model import DrillResult
from harness.report.files import atomic_write_text, iter_gates, verdict_text
from harness.report.text import show

FILENAME = "junit.xml"
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", show(value))


def junit_tree(result: DrillResult) -> ET.Element:
    """The <testsuites> element. A scenario without gates is an error testcase, never a silent pass."""
    results = result.to_json()
    drill = _x(results.get("drill", "drill"))
    suite = ET.Element("testsuite", name=drill, timestamp=_x(results.get("started_at")))
    props = ET.SubElement(suite, "properties")
    for name in ("correlation_id", "verdict", "started_at", "finished_at"):
        ET.SubElement(props, "property", name=name, value=_x(results.get(name)))
    counts = {"tests": 0, "failures": 0, "errors": 0}
    cases = list(iter_gates(results))
    for scenario in results.get("scenarios") or ():
        if not scenario.get("gates"):
            cases.append((str(scenario.get("name", "scenario")), {
                "id": "(no gates)", "verdict": "unknown", "detail": "no gate was evaluated"}))
    for classname, gate in cases:
        case = ET.SubElement(suite, "testcase", name=_x(gate.get("id")), classname=_x(classname))
        counts["tests"] += 1
        verdict = verdict_text(gate.get("verdict"))
        if verdict == "pass":
            continue
        tag = "failure" if verdict == "fail" else "error"
        counts["failures" if tag == "failure" else "errors"] += 1
        message = f"{verdict.upper()}: measured {show(gate.get('measured'))}, threshold {show(gate.get('threshold'))}"
        element = ET.SubElement(case, tag, message=_x(message), type=verdict)
        element.text = _x(gate.get("detail") or message)
    for key, value in counts.items():
        suite.set(key, str(value))
    root = ET.Element("testsuites", name=drill, **{k: str(v) for k, v in counts.items()})
    root.append(suite)
    return root


def write_junit(result: DrillResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write `out_dir/junit.xml` atomically; returns its path."""
    root = junit_tree(result)
    ET.indent(root)
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    return atomic_write_text(Path(out_dir) / FILENAME, text)
