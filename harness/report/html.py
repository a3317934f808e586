"""report.html: one self-contained page for the CAB (inline CSS and SVG, autoescaped Jinja2)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import jinja2

from harness.model import DrillResult
from harness.report.files import atomic_write_text, iter_gates, verdict_text
from harness.report.text import show

FILENAME = "report.html"
TEMPLATES = Path(__file__).resolve().parents[2] / "reports" / "templates"
TEMPLATE = "report.html.j2"
VERDICT_WORDS = {
    "pass": "PASS: every gate passed",
    "fail": "FAIL: at least one gate failed",
    "unknown": "UNKNOWN: at least one gate could not be evaluated",
}
_SECRET = re.compile(r"pass(word|wd)?|secret|token|credential|private|api[_-]?key|access[_-]?key", re.I)

# Timeline chart geometry, in SVG user units.
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 720, 120, 48, 12, 12, 28
ROW_Y = {"ok": 30, "info": 55, "fail": 80}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["show"] = show
    return env


def timeline(data: dict[str, Any] | None) -> dict[str, Any]:
    """SVG geometry of a scenario timeline: probe dots by status and shaded fault windows.

    A window whose end is null runs to the right edge and is labelled "not healed".
    """
    data = data or {}
    probes = [(float(t), str(s)) for t, s in data.get("probes") or () if t is not None]
    windows = [(w[0], w[1] if len(w) > 1 else None, w[2] if len(w) > 2 else "fault")
               for w in data.get("fault_windows") or ()]
    times = [t for t, _ in probes] + [float(x) for w in windows for x in w[:2] if x is not None]
    t0 = min([0.0] + times)
    t1 = max([t0 + 1.0] + times)
    span = t1 - t0
    plot_w = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return round(LEFT + (t - t0) / span * plot_w, 2)

    dots = [{"x": x(t), "y": ROW_Y.get(s, ROW_Y["info"]), "status": s if s in ROW_Y else "info",
             "title": f"{t:.1f} s: {s}"} for t, s in probes]
    shaded = []
    for start, end, name in windows:
        left = x(float(start)) if start is not None else LEFT
        right = x(float(end)) if end is not None else WIDTH - RIGHT
        label = f"{name} (not healed)" if end is None else str(name)
        shaded.append({"x": left, "w": max(right - left, 1.0), "label": label})
    ticks = [{"x": x(t0 + span * i / 5), "label": _tick(t0 + span * i / 5, span)} for i in range(6)]
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
            "axis_y": HEIGHT - BOTTOM, "rows": ROW_Y, "dots": dots, "windows": shaded,
            "ticks": ticks, "empty": not probes, "counts": _counts(probes)}


def _tick(t: float, span: float) -> str:
    if span > 900:
        return f"{t / 60:.1f} min"
    return f"{t:.0f} s" if span >= 50 else f"{t:.1f} s"


def _counts(probes: list[tuple[float, str]]) -> dict[str, int]:
    counts = {"ok": 0, "fail": 0, "info": 0}
    for _, status in probes:
        counts[status if status in counts else "info"] += 1
    return counts


NOT_MEASURED = "n/a"


def _budget_sentence(m: dict[str, Any]) -> str | None:
    """The error budget in one sentence a reader outside engineering can follow."""
    if "error_budget_used_s" not in m:
        return None
    return (f"The spec's 99.9% availability per 5-minute window allows {m['error_budget_s']:g} s of failed "
            f"requests in any 5 minutes; the worst window of this scenario, its injected faults included, had "
            f"{m['error_budget_used_s']:g} s of failed probes ({m['downtime_s']:g} s in all).")


def _scenario_view(scenario: dict[str, Any]) -> dict[str, Any]:
    measurements = scenario.get("measurements") or {}
    gates = [dict(g, verdict=verdict_text(g.get("verdict"))) for g in scenario.get("gates") or ()]
    return {
        "faults": list(scenario.get("faults") or ()),
        "not_applicable": sorted((scenario.get("not_applicable") or {}).items()),
        "budget": _budget_sentence(measurements),
        "name": scenario.get("name", "scenario"),
        "verdict": verdict_text(scenario.get("verdict")),
        "feature": scenario.get("feature"),
        "matrix_row": scenario.get("matrix_row"),
        "description": [line.strip() for line in (scenario.get("description") or "").splitlines() if line.strip()],
        "tags": list(scenario.get("tags") or ()),
        "error": scenario.get("error"),
        "observations": list(scenario.get("observations") or ()),
        "measurements": sorted((k, v) for k, v in measurements.items() if k not in ("availability_buckets", "sequence")),
        "phases": sorted((scenario.get("phases") or {}).items(), key=lambda kv: (kv[1] is None, kv[1] or 0)),
        "lost_write_keys": list(scenario.get("lost_write_keys") or ()),
        "lost_measured": measurements.get("lost_writes") is not None,
        "correlation_ids": list(scenario.get("correlation_ids") or ()),
        "gates": gates,
        "timeline": timeline(scenario.get("timeline")),
    }


def _redact(environment: dict[str, Any]) -> list[tuple[str, Any]]:
    # Secrets never appear in reports, even if a caller put one in the environment block.
    return [(k, "(redacted)" if _SECRET.search(str(k)) else v) for k, v in sorted(environment.items())]


def report_view(result: DrillResult) -> dict[str, Any]:
    """Everything the template shows, derived from the drill's result; missing fields read unknown."""
    results = result.to_json()
    verdict = verdict_text(results.get("verdict"))
    targets = results.get("targets") or {}
    not_passed = [(c, g) for c, g in iter_gates(results) if verdict_text(g.get("verdict")) != "pass"]
    return {
        "title": results.get("title") or results.get("drill") or "Disaster-recovery drill",
        "drill": results.get("drill"),
        "correlation_id": results.get("correlation_id"),
        "started_at": results.get("started_at"),
        "finished_at": results.get("finished_at"),
        "schema_version": results.get("schema_version"),
        "verdict": verdict,
        "verdict_words": VERDICT_WORDS[verdict],
        "dry_run": bool(results.get("dry_run")),
        "target_rows": [
            {"key": k, "target": v,
             "measured": [(s.get("measurements") or {}).get(k, NOT_MEASURED) for s in results.get("scenarios") or ()]}
            for k, v in targets.items()
        ],
        "not_passed": [{"scenario": c, "id": g.get("id"), "verdict": verdict_text(g.get("verdict")),
                        "detail": g.get("detail")} for c, g in not_passed],
        "drill_gates": [dict(g, verdict=verdict_text(g.get("verdict"))) for g in results.get("gates") or ()],
        "scenarios": [_scenario_view(s) for s in results.get("scenarios") or ()],
        "correlation_ids": list(results.get("correlation_ids") or ()),
        "environment": _redact(results.get("environment") or {}),
    }


def render_html(result: DrillResult) -> str:
    """The report page as text, from `reports/templates/report.html.j2` with autoescape on."""
    return _environment().get_template(TEMPLATE).render(report_view(result))


def write_html(result: DrillResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write `out_dir/report.html` atomically; returns its path."""
    return atomic_write_text(Path(out_dir) / FILENAME, render_html(result))
