"""`drill history`: every verified drill of the CAB log, per HA domain and per quarter: RTO and
RPO (SVG charts on the trend page), pass rate, each run's environment class, the last passing
drill of a counted class and the overdue domains (only the classes of the counting policy make a
domain current: staging and production by default; lab runs are rehearsals).
Pure: verified entries in, a dict out; the page is rendered from that dict."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from harness.calendar import DOMAINS, STALE_AFTER_DAYS, domain_states
from harness.environments import CLASSES, DEFAULT_COUNT, UNKNOWN, class_of, count_words, lab_warning
from harness.files import verdict_text
from harness.matrix import numbered

RANK = {"pass": 0, "waived": 1, "unknown": 2, "fail": 3}  # as harness.model.Verdict.rank

# chart geometry, SVG user units
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 200, 56, 12, 14, 30


def _when(text: Any) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def quarter(when: dt.datetime) -> str:
    return f"{when.year}-Q{(when.month - 1) // 3 + 1}"


def _worst(a: str | None, b: str) -> str:
    return b if a is None or RANK[b] > RANK[a] else a


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


NOT_RUN = "not_run"  # a run (or scenario) that could not act (harness.faults.refused): not a drill verdict


def runs_by_domain(entries: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """{domain: [{at, drill, verdict, rto_seconds, rpo_seconds, class}]}: each drill's outcome per
    domain it covered (a scenario's matrix row names its domain; else the plan's HA domain), with
    its environment class."""
    found: dict[str, list[dict[str, Any]]] = {d: [] for d in DOMAINS}
    for entry in entries:
        if entry.get("kind", "drill") != "drill" or entry.get("dry_run"):
            continue
        at = _when(entry.get("finished_at"))
        if at is None:
            continue
        own = entry.get("ha_domain")
        per: dict[str, dict[str, Any]] = {}
        for scenario in entry.get("scenarios") or ():
            row = numbered(scenario.get("matrix_row"))
            domain = row.ha_domain if row is not None else own if own in DOMAINS else None
            if domain is None or scenario.get("verdict") == NOT_RUN:  # could not act: no verdict
                continue
            run = per.setdefault(domain, {"verdict": None, "rto_seconds": None, "rpo_seconds": None})
            run["verdict"] = _worst(run["verdict"], verdict_text(scenario.get("verdict")))
            for key in ("rto_seconds", "rpo_seconds"):
                value = _number(scenario.get(key))
                if value is not None:
                    run[key] = value if run[key] is None else max(run[key], value)
        if own in DOMAINS and own not in per and entry.get("verdict") != NOT_RUN:
            per[own] = {"verdict": verdict_text(entry.get("verdict")), "rto_seconds": None, "rpo_seconds": None}
        for domain, run in per.items():
            found[domain].append({"at": at, "drill": entry.get("drill"), **run, "class": class_of(entry)})
    for runs in found.values():
        runs.sort(key=lambda r: r["at"])
    return found


def history(
    entries: list[dict[str, Any]],
    skipped: int,
    now: dt.datetime,
    domain_of: Callable[[str], str | None] = lambda drill: None,
    stale_days: float = STALE_AFTER_DAYS,
    count: Iterable[str] = DEFAULT_COUNT,
) -> dict[str, Any]:
    count = tuple(count)
    by_domain = runs_by_domain(entries)
    states = {s.domain: s for s in domain_states(entries, domain_of, now, stale_days, count=count)}
    domains = []
    for domain in DOMAINS:
        runs = by_domain[domain]
        quarters: dict[str, dict[str, Any]] = {}
        for run in runs:
            q = quarters.setdefault(
                quarter(run["at"]),
                {
                    "quarter": quarter(run["at"]),
                    "runs": 0,
                    "passed": 0,
                    "counted_passed": 0,
                    "classes": {},
                    "rto_max_s": None,
                    "rpo_max_s": None,
                },
            )
            q["runs"] += 1
            q["passed"] += run["verdict"] == "pass"
            q["counted_passed"] += run["verdict"] == "pass" and run["class"] in count
            q["classes"][run["class"]] = q["classes"].get(run["class"], 0) + 1
            for key, into in (("rto_seconds", "rto_max_s"), ("rpo_seconds", "rpo_max_s")):
                if run[key] is not None:
                    q[into] = run[key] if q[into] is None else max(q[into], run[key])
        state = states[domain]
        passed = sum(r["verdict"] == "pass" for r in runs)
        domains.append(
            {
                "domain": domain,
                "runs": len(runs),
                "passed": passed,
                "pass_rate": round(passed / len(runs), 4) if runs else None,
                "last_pass": None
                if state.last_pass is None
                else {"drill": state.last_drill, "finished_at": state.last_pass.isoformat(), "class": state.last_class},
                "newer_uncounted": None
                if state.uncounted is None
                else {
                    "drill": state.uncounted[1],
                    "finished_at": state.uncounted[0].isoformat(),
                    "class": state.uncounted[2],
                },
                "overdue": state.stale,
                "quarters": list(quarters.values()),
                "points": [{**r, "at": r["at"].isoformat()} for r in runs],
            }
        )
    all_runs = [
        e for e in entries if e.get("kind", "drill") == "drill" and not e.get("dry_run") and e.get("verdict") != NOT_RUN
    ]
    passed = sum(verdict_text(e.get("verdict")) == "pass" for e in all_runs)
    classes = {c: sum(class_of(e) == c for e in all_runs) for c in (*CLASSES, UNKNOWN)}
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "stale_after_days": stale_days,
        "count": list(count),
        "count_words": count_words(count),
        "lab_runs_counted": lab_warning(count) is not None,
        "warning": lab_warning(count),
        "runs_by_class": {c: n for c, n in classes.items() if n},
        "skipped_unverified": skipped,
        "runs": len(all_runs),
        "passed": passed,
        "pass_rate": round(passed / len(all_runs), 4) if all_runs else None,
        "overdue": [d["domain"] for d in domains if d["overdue"]],
        "domains": domains,
    }


def chart(points: list[dict[str, Any]], start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """SVG geometry of one domain's chart: RTO (circles) and RPO (squares) in seconds over time,
    coloured by verdict, with quarter ticks."""
    values = [p[k] for p in points for k in ("rto_seconds", "rpo_seconds") if p.get(k) is not None]
    top = max(values + [1.0]) * 1.15
    span = max((end - start).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(when: dt.datetime) -> float:
        return round(LEFT + (when - start).total_seconds() / span * plot_w, 2)

    def y(value: float) -> float:
        return round(TOP + plot_h - value / top * plot_h, 2)

    marks = []
    for p in points:
        at = _when(p["at"])
        if at is None:  # points come from entries whose time was read: never here
            continue
        for key, shape in (("rto_seconds", "circle"), ("rpo_seconds", "square")):
            if p.get(key) is not None:
                marks.append(
                    {
                        "shape": shape,
                        "x": x(at),
                        "y": y(p[key]),
                        "verdict": p["verdict"],
                        "class": p.get("class", UNKNOWN),
                        "title": f"{p['at'][:16]} {p['drill']}: {key.split('_')[0].upper()} {p[key]:g} s "
                        f"({p['verdict']}, {p.get('class', UNKNOWN)})",
                    }
                )
    ticks, q = [], dt.datetime(start.year, 3 * ((start.month - 1) // 3) + 1, 1, tzinfo=dt.UTC)
    while q <= end:
        if q >= start:
            ticks.append({"x": x(q), "label": quarter(q)})
        q = dt.datetime(q.year + (q.month == 10), (q.month + 2) % 12 + 1, 1, tzinfo=dt.UTC)
    y_ticks = [{"y": y(top * i / 4), "label": f"{top * i / 4:.3g} s"} for i in range(5)]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "axis_y": HEIGHT - BOTTOM,
        "marks": marks,
        "ticks": ticks,
        "y_ticks": y_ticks,
        "empty": not marks,
    }


def page_view(data: dict[str, Any]) -> dict[str, Any]:
    """The trend page's view: the history plus a chart per domain on one shared time axis."""
    times = [t for d in data["domains"] for p in d["points"] if (t := _when(p["at"])) is not None]
    end = max(times) if times else (_when(data["generated_at"]) or dt.datetime.now(dt.UTC))
    start = min(times) if times else end - dt.timedelta(days=92)
    start, end = start - dt.timedelta(days=20), end + dt.timedelta(days=40)  # room for the labels
    return {**data, "charts": {d["domain"]: chart(d["points"], start, end) for d in data["domains"]}}


def render_history(data: dict[str, Any]) -> str:
    from harness.report.html import _environment

    return _environment().get_template("history.html.j2").render(page_view(data))
