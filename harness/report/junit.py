"""junit.xml: one testsuite per drill, one testcase per gate per scenario (fail -> failure, unknown -> error,
waived -> failure of type "waived": a gate that met only a target the plan waived is not a pass).

The testsuite's `time` is the drill's duration; a testcase's `time` is its scenario's duration (every
gate of a scenario is judged on the whole scenario's history, so no gate has a time of its own) and
its `file` the scenario's feature file. Each testcase carries <properties>: measured and threshold,
for a gate that is one numeric comparison its operator, limit and unit, and what the gate judges
(judges: system, runbook or lab; absent for results written before gates said it)."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.files import atomic_write_text, plain, verdict_text
from harness.model import DrillResult
from harness.text import show

FILENAME = "junit.xml"
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", show(value))


def _exact(value: Any) -> str:
    """A property's value: a finite number exactly as recorded (6.1, 28800.0, 0), anything else as the report
    shows it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return repr(value)
    return _x(value)


def duration(started: Any, finished: Any) -> float | None:
    """Seconds from one ISO 8601 time to another; None when either is missing or unreadable, or the
    end comes before the start."""
    try:
        seconds = (dt.datetime.fromisoformat(str(finished)) - dt.datetime.fromisoformat(str(started))).total_seconds()
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _time(seconds: float | None) -> str:
    """JUnit's `time`: seconds to 3 decimals, "0" when unknown."""
    return "0" if seconds is None else f"{seconds:.3f}"


def junit_tree(result: DrillResult) -> ET.Element:
    """The <testsuites> element. A scenario without gates is an error testcase, never a silent pass."""
    results = plain(result.to_json())  # valid UTF-8, secret shapes masked, as in results.json
    drill = _x(results.get("drill", "drill"))
    suite = ET.Element(
        "testsuite",
        name=drill,
        timestamp=_x(results.get("started_at")),
        time=_time(duration(results.get("started_at"), results.get("finished_at"))),
    )
    props = ET.SubElement(suite, "properties")
    for name in ("correlation_id", "verdict", "started_at", "finished_at"):
        ET.SubElement(props, "property", name=name, value=_x(results.get(name)))
    counts = {"tests": 0, "failures": 0, "errors": 0}
    # (classname, gate, file, seconds): each scenario's gates with its feature file and duration, then
    # the drill-level gates (the plan's file, no duration of their own), then the scenarios without gates
    scenarios = [
        (
            str(s.get("name", "scenario")),
            s.get("gates") or [],
            s.get("feature"),
            duration(s.get("started_at"), s.get("finished_at")),
        )
        for s in results.get("scenarios") or ()
    ]
    cases = [(name, gate, feature, seconds) for name, gates, feature, seconds in scenarios for gate in gates]
    cases += [
        (str(results.get("drill", "drill")), gate, results.get("plan"), None) for gate in results.get("gates") or ()
    ]
    cases += [
        (name, {"id": "(no gates)", "verdict": "unknown", "detail": "no gate was evaluated"}, feature, seconds)
        for name, gates, feature, seconds in scenarios
        if not gates
    ]
    for classname, gate, file, seconds in cases:
        case = ET.SubElement(
            suite,
            "testcase",
            name=_x(gate.get("id")),
            classname=_x(classname),
            file=_x(file or ""),
            time=_time(seconds),
        )
        properties = ET.SubElement(case, "properties")
        for key in ("measured", "threshold", "operator", "limit", "unit", "judges"):
            if key in ("measured", "threshold") or gate.get(key) is not None:
                ET.SubElement(properties, "property", name=key, value=_exact(gate.get(key)))
        counts["tests"] += 1
        verdict = verdict_text(gate.get("verdict"))
        if verdict == "pass":
            continue
        tag = "failure" if verdict in ("fail", "waived") else "error"
        counts["failures" if tag == "failure" else "errors"] += 1
        message = f"{verdict.upper()}: measured {show(gate.get('measured'))}, threshold {show(gate.get('threshold'))}"
        if verdict == "waived":
            waiver = gate.get("waiver") or {}
            message += (
                f" (the plan's waived target), not the spec's floor {show(waiver.get('operator'))} "
                f"{show(waiver.get('floor'))}; waiver: {show(waiver.get('reason'))}, approved by "
                f"{show(waiver.get('approved_by'))}, expires {show(waiver.get('expires'))}"
            )
        element = ET.SubElement(case, tag, message=_x(message), type=verdict)
        element.text = _x(gate.get("detail") or message)
    for key, value in counts.items():
        suite.set(key, str(value))
    root = ET.Element("testsuites", {"name": drill, **{k: str(v) for k, v in counts.items()}})
    root.append(suite)
    return root


def write_junit(result: DrillResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write `out_dir/junit.xml` atomically; returns its path."""
    root = junit_tree(result)
    ET.indent(root)
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    return atomic_write_text(Path(out_dir) / FILENAME, text)
