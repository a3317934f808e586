"""The spec's failure-modes matrix (section 2), each row with its scenario and last verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .environments import DEFAULT_COUNT, LAB, class_of, count_words, lab_warning
from .inputs import printable


@dataclass(frozen=True)
class Row:
    """One row of the failure-modes matrix, every fact of it written here once: the spec's
    component and failure, its Impact column and the impact it scores (1-5, harness.report.risk),
    the HA domain it drills (harness.report.history), the links its steps name (the words of a
    step -> the Toxiproxy proxy; harness.runner.common.restore_link) and the feature files that
    drill it (one or more; none while it has no scenario yet). Every field is required: a row
    missing one, or with a value out of range, is refused when it is defined."""

    component: str
    failure: str
    impact: int  # 1-5: the risk score's impact of a missed threshold of this row
    impact_words: str  # the row's Impact column
    ha_domain: str  # one of harness.calendar.DOMAINS
    links: Mapping[str, str]  # a step's words for a link -> its proxy (links the lab names itself: none)
    features: tuple[str, ...]  # scenarios/....feature paths, each once; () while the row has no scenario yet

    def __post_init__(self) -> None:
        for name in ("component", "failure", "impact_words", "ha_domain"):
            if not (isinstance(getattr(self, name), str) and getattr(self, name).strip()):
                raise ValueError(f"matrix row {self.component!r}: {name} must be a non-empty string")
        if type(self.impact) is not int or not 1 <= self.impact <= 5:
            raise ValueError(
                f"matrix row {self.component!r}: impact must be a whole number from 1 to 5, got {self.impact!r}"
            )
        if not isinstance(self.links, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in self.links.items()
        ):
            raise ValueError(f"matrix row {self.component!r}: links must map a step's words to a proxy name")
        if not isinstance(self.features, tuple) or not all(
            isinstance(f, str) and f.startswith("scenarios/") and f.endswith(".feature") for f in self.features
        ):
            raise ValueError(
                f"matrix row {self.component!r}: features must be a tuple of scenarios/....feature paths "
                f"(() while the row has no scenario), got {self.features!r}"
            )
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"matrix row {self.component!r}: features must name each file once: {self.features!r}")
        missing = [f for f in self.features if _CHECKOUT.is_dir() and not (_CHECKOUT.parent / f).is_file()]
        if missing:
            raise ValueError(f"matrix row {self.component!r}: features must exist: no file {', '.join(missing)}")
        object.__setattr__(self, "links", MappingProxyType(dict(self.links)))


# the checkout's scenarios/ (a row's features are checked there; an installed wheel has none)
_CHECKOUT = Path(__file__).resolve().parents[1] / "scenarios"
NO_LINKS: Mapping[str, str] = MappingProxyType({})

ROWS = (
    Row(
        "Control Plane API/Policy services",
        "Stateless service outage",
        4,
        "New Deployment Intents and approves blocked",
        "api",
        NO_LINKS,
        ("scenarios/api/stateless_outage.feature",),
    ),
    Row(
        "Database",
        "Primary unavailable",
        5,
        "No reads/writes for policy/evidence",
        "database",
        NO_LINKS,  # replication: the lab names its proxy
        ("scenarios/database/primary_failover.feature",),
    ),
    Row(
        "Evidence store",
        "Object storage outage",
        4,
        "Evidence packs cannot be written/read, publish blocked",
        "evidence-store",
        {"alternate region": "s3-replica", "evidence store": "s3"},
        ("scenarios/evidence/object_storage_outage.feature",),
    ),
    Row(
        "Intune Graph degraded",
        "publish/assignment fails",  # platform links: platform-<name>, every platform
        3,
        "deployments paused for rings relying on Intune",
        "connectors",
        NO_LINKS,
        ("scenarios/connectors/intune_graph_degraded.feature",),
    ),
    Row(
        "Jamf API outage",
        "macOS distribution fails",
        3,
        "macOS ring progression halted",
        "connectors",
        NO_LINKS,
        ("scenarios/connectors/jamf_outage.feature",),
    ),
    Row(
        "SCCM site server down",
        "offline site distribution interrupted",
        3,
        "Air-gapped ring cannot progress",
        "connectors",
        NO_LINKS,
        ("scenarios/connectors/sccm_site_down.feature",),
    ),
    Row(
        "Event store write blocked",
        "Audit events not persisted",
        5,
        "Audit events not persisted: non-compliance risk",
        "event-store",
        NO_LINKS,
        ("scenarios/eventstore/write_blocked.feature",),
    ),
)
_BY_NUMBER = dict(enumerate(ROWS, 1))


def numbered(number: object) -> Row | None:
    """The row of this number (from 1, as results.json's matrix_row names it), else None."""
    try:
        return _BY_NUMBER.get(number)  # type: ignore[call-overload]  # any JSON value may come
    except TypeError:  # a list or a mapping: no row
        return None


def links() -> dict[str, str]:
    """Every row's links, in row order: a step's words for a link -> its proxy."""
    return {words: proxy for row in ROWS for words, proxy in row.links.items()}


def row_of(feature: str | Path) -> tuple[int, Row] | None:
    """(row number from 1, row) of the matrix row drilled by this feature file (one of its
    features), else None."""
    text = str(feature).replace("\\", "/")
    for number, row in enumerate(ROWS, 1):
        for path in row.features:
            relative = path.removeprefix("scenarios/")  # how a drill's results name it
            if text in (path, relative) or text.endswith("/" + relative):
                return number, row
    return None


def matrix_order(features) -> list:
    """Feature paths in the matrix's row order; features of no row follow, in name order."""

    def key(path):
        found = row_of(path)
        return (found[0] if found else len(ROWS) + 1, str(path))

    return sorted(features, key=key)


def last_verdicts(entries, count=DEFAULT_COUNT) -> dict[str, tuple[str, str, str]]:
    """{feature file name: (verdict, finished_at, environment class)} of the newest drill that ran
    each, from verified CAB log entries, among the runs of the classes the policy `count`s (dry
    runs prove nothing and do not count; a lab run is a rehearsal unless the policy counts lab)."""
    found: dict[str, tuple[str, str, str]] = {}
    for entry in entries:
        if entry.get("kind", "drill") != "drill" or entry.get("dry_run") or class_of(entry) not in set(count):
            continue
        for scenario in entry.get("scenarios") or ():
            feature = Path(str(scenario.get("feature") or "")).name
            if feature and scenario.get("verdict") != "not_run":  # could not act: the row keeps its verdict
                found[feature] = (scenario.get("verdict") or "unknown", entry.get("finished_at") or "", class_of(entry))
    return found


def _newest_uncounted(entries, count) -> dict[str, tuple[str, str, str]]:
    others = [e for e in entries if class_of(e) not in set(count)]
    return last_verdicts(others, count=tuple({class_of(e) for e in others}))


def _newest(found: dict[str, tuple[str, str, str]], names: list[str]) -> tuple[str, str, str] | None:
    """The newest (by finished_at) of these feature files' (verdict, finished_at, class), else None."""
    return max((found[n] for n in names if n in found), key=lambda v: v[1], default=None)


def matrix_rows(entries, root: Path, count=DEFAULT_COUNT) -> list[dict]:
    entries = list(entries)
    verdicts = last_verdicts(entries, count)
    uncounted = _newest_uncounted(entries, count)
    rows = []
    for i, row in enumerate(ROWS, 1):
        names = [Path(f).name for f in row.features]
        # the row's last verdict: the newest of its feature files' (one file: that file's)
        verdict, when, cls = _newest(verdicts, names) or (None, None, None)
        other = _newest(uncounted, names)
        if other is not None and when is not None and other[1] <= when:
            other = None  # only a newer run that does not count is worth naming
        rows.append(
            {
                "row": i,
                "component": row.component,
                "failure": row.failure,
                "scenario": row.features[0] if row.features else None,  # the first (before rows had several)
                "scenarios": list(row.features),
                "scenario_present": bool(row.features) and all((root / f).exists() for f in row.features),
                "last_verdict": verdict,
                "last_run": when,
                "last_class": cls,
                "newer_uncounted": None
                if other is None
                else {"verdict": other[0], "finished_at": other[1], "class": other[2]},
            }
        )
    return rows


def render(entries, skipped: int, root: Path, count=DEFAULT_COUNT) -> str:
    table = []
    for r in matrix_rows(entries, root, count):
        if not r["scenarios"]:
            scenario, verdict = "(no scenario yet)", "-"
        else:
            scenario = ", ".join(f if (root / f).exists() else f"{f} (missing)" for f in r["scenarios"])
            verdict = (
                f"{r['last_verdict'].upper()} {r['last_run']} ({r['last_class']})".strip()
                if r["last_verdict"]
                else "never run"
            )
            other = r["newer_uncounted"]
            if other:
                verdict += (
                    f"; not counted: {other['verdict'].upper()} {other['finished_at']} ({other['class']}"
                    f"{': a rehearsal' if other['class'] == LAB else ''})"
                )
        table.append((str(r["row"]), r["component"], r["failure"], scenario, printable(verdict)))
    header = ("#", "Component", "Failure", "Scenario", "Last verdict")
    widths = [max(len(r[c]) for r in [header, *table]) for c in range(4)]
    lines = [" ".join(f"{cell:{w}}" for cell, w in zip(r, widths, strict=False)) + " " + r[4] for r in [header, *table]]
    warning = lab_warning(count)
    lines.append(warning or f"(last verdicts of runs of class {count_words(count)}; --count chooses the classes)")
    if skipped:
        lines.append(f"({skipped} CAB log line(s) skipped: not verified; `drill cab verify` names them)")
    return "\n".join(lines)
