"""Chaos plans (drills/chaos/*.yaml): faults as data, checked by the fault registry before anything
runs, or a seeded random game day drawn from the plan's allowed set.

    chaos: db-latency-200ms            # id (lowercase letters, digits, '-')
    title: 200 ms on the database link
    lab: running                       # running (`drill lab up`), embedded (a lab of its own),
                                       # or an external target mapping (as a drill plan's lab)
    environment: {class: staging, name: staging-eu}   # an external target only: staging or production
                                       # (a lab's runs are class lab: rehearsals)
    blast_radius: [db]                 # what faults may touch; a fault outside it is refused
    workload: writes                   # writes (default: the sequenced writer and the probe) | probes
    faults:                            # a fixed sequence, one at a time
      - {type: latency, target: db, params: {latency_ms: 200}, duration: 5s, after: 1s}
    game_day:                          # the allowed set for --seed N --duration D --faults a,b
      gap: [1s, 5s]                    # pause between two faults, drawn in this range
      faults:
        latency: {type: latency, targets: [db, s3], params: {latency_ms: [100, 400]}, duration: [2s, 6s]}
    stop_conditions:                   # broken: every fault healed at once, verdict fail
      probe_failing_s: 10              # the health probe failing longer than this in a row
      error_budget_s: 30               # total probe downtime over the run
    targets: {rto_seconds: 60, lost_writes: 0, availability: 0.999}   # never looser than the spec's
    waivers: []                        # floors unless waived, as in a drill plan (harness.spec_floors)
    availability: {period_days: 30, drill_allowance: 0.25}   # the error budget (as a drill plan's)

Durations are seconds (a number) or a number with ms, s, m or h. A game day's gap and each of its
faults' durations are at least 100 ms, and one game day draws at most 10,000 faults.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PlanError, checked, collector, quoted, shown
from ..faults import FaultError, build
from ..inputs import printable
from ..model import FaultSpec
from ..plan import (
    DEFAULT_TARGETS,
    DRILL_ID,
    AvailabilityPolicy,
    HugeNumber,
    _parse_targets,
    parse_availability,
    read_yaml,
)
from ..spec_floors import bind, parse_waivers

KNOWN_KEYS = {
    "chaos",
    "title",
    "description",
    "lab",
    "blast_radius",
    "workload",
    "faults",
    "game_day",
    "stop_conditions",
    "targets",
    "availability",
    "environment",
}
STOP_KEYS = {"probe_failing_s", "error_budget_s"}
KNOWN_KEYS.add("waivers")  # targets looser than the spec's floors (harness.spec_floors)
DEFAULT_STOP = {"probe_failing_s": 30.0, "error_budget_s": 120.0}
TIME_LIMIT_MARGIN_S = 5.0  # the fault server lifts a fault this long after its planned end by itself
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION = re.compile(r"\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h)?\s*")  # fullmatch
MAX_DURATION_S = 7 * 86400.0
MIN_GAME_DAY_S = 0.1  # a game day's gap and fault durations: a draw always moves time on
MAX_DRAWN = 10_000  # faults of one game day (--duration / (gap + duration) at most this)


@dataclass(frozen=True)
class Step:
    """One fault of the sequence: starts `after` seconds after the previous one healed (or the
    run began), lasts `duration` seconds, then is healed."""

    name: str
    spec: FaultSpec
    duration: float
    after: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.spec.type,
            "target": self.spec.target,
            "params": dict(self.spec.params),
            "duration_s": self.duration,
            "after_s": self.after,
            "time_limit_s": self.spec.time_limit_s,
        }


@dataclass(frozen=True)
class Template:
    type: str
    targets: tuple[str, ...]
    params: dict[str, Any]  # a value, or [low, high] drawn uniformly
    duration: tuple[float, float]


@dataclass(frozen=True)
class ChaosPlan:
    path: Path
    chaos: str
    title: str
    lab: Any  # "running", "embedded" or an external lab mapping
    blast_radius: tuple[str, ...]
    workload: str
    steps: tuple[Step, ...]
    game_day: dict[str, Template] = field(default_factory=dict)
    gap: tuple[float, float] = (1.0, 5.0)
    stop: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STOP))
    targets: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    waivers: dict = field(default_factory=dict)  # target key -> harness.spec_floors.Waiver (bound)
    description: str = ""
    availability: AvailabilityPolicy = AvailabilityPolicy()  # the error budget's period, allowance, region
    environment: dict = field(default_factory=lambda: {"class": "lab", "name": "embedded lab"})


def parse_duration(value: Any, fail, key: str) -> float:
    if isinstance(value, bool):
        raise fail(key, f"must be a duration like 30s, 500ms or 10m, got {quoted(value)}")
    if isinstance(value, int) and not 0 <= value <= MAX_DURATION_S:  # float() of a huge int overflows
        seconds = math.inf
    elif isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = DURATION.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise fail(key, f"must be a duration like 30s, 500ms or 10m, got {quoted(value)}")
        seconds = float(match.group(1)) * UNITS[match.group(2) or "s"]
    if not 0 <= seconds <= MAX_DURATION_S:  # NaN and infinities too
        raise fail(key, f"must be between 0 and 7 days, got {quoted(value)}")
    return seconds


def _spec(fault_type: Any, target: Any, params: Any, duration: float, where: str, fail) -> FaultSpec:
    if not isinstance(params, dict):
        raise fail(f"{where}.params", "must be a mapping of the fault type's parameters")
    if not isinstance(fault_type, str):
        raise fail(f"{where}.type", f"must be a fault type's name, got {quoted(fault_type)}")
    for name, value in params.items():
        if not isinstance(name, str):
            raise fail(f"{where}.params", f"a parameter's name is text, got {quoted(name)}")
        if (
            (isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**15)
            or (isinstance(value, float) and not math.isfinite(value))
            or isinstance(value, HugeNumber)
        ):
            raise fail(f"{where}.params.{name}", f"must be a finite number of reasonable size, got {quoted(value)}")
    spec = FaultSpec(type=fault_type, target=target, params=dict(params), time_limit_s=duration + TIME_LIMIT_MARGIN_S)
    try:
        fault = build(spec)
    except FaultError as exc:
        raise fail(where, str(exc)) from None
    if not fault.TIME_LIMITED:
        spec = dataclasses.replace(spec, time_limit_s=None)  # a kill cannot undo itself
    return spec


def _radius_check(target: str, radius: tuple[str, ...], where: str, fail) -> None:
    if target not in radius:
        raise fail(
            f"{where}.target",
            f"{quoted(target)} is outside the blast radius ({', '.join(radius)}); add it to blast_radius to allow it",
        )


def parse_chaos_plan(data: Any, path: Path, errors: list[PlanError] | None = None) -> ChaosPlan:
    """The chaos plan in `data`. Raises the first PlanError; with `errors` given, every error of
    the plan's independent checks is appended there (then the first is raised)."""
    found: list[PlanError] = []
    try:
        return _parse_chaos_plan(data, path, collector(found if errors is not None else None), found)
    except PlanError as exc:
        if not any(exc is e for e in found):
            found.append(exc)
        raise found[0] from None
    finally:
        if errors is not None:
            errors.extend(found)


def _parse_chaos_plan(data: Any, path: Path, add: Callable[[PlanError], None], found: list) -> ChaosPlan:
    where_file = shown(path)

    def fail(key: str, message: str) -> PlanError:
        # the key and the message may quote the plan's own text: control characters escaped
        return PlanError(printable(f"{where_file}: key '{key}': {message}"))

    if not isinstance(data, dict):
        raise PlanError(f"{where_file}: a chaos plan is a mapping with keys {', '.join(sorted(KNOWN_KEYS))}")
    for key in sorted(str(k) for k in data if k not in KNOWN_KEYS):
        add(fail(key, f"unknown key; known keys: {', '.join(sorted(KNOWN_KEYS))}"))
    for key in ("chaos", "title", "lab", "blast_radius"):
        if key not in data:
            add(fail(key, "missing; every chaos plan needs chaos, title, lab and blast_radius"))
    chaos = data.get("chaos")
    if "chaos" in data and (not isinstance(chaos, str) or not DRILL_ID.fullmatch(chaos)):
        add(
            fail("chaos", f"must be an id of 1 to 63 lowercase letters, digits and '-' (one line), got {quoted(chaos)}")
        )
    title = data.get("title")
    if "title" in data and (not isinstance(title, str) or not title.strip()):
        add(fail("title", f"must be a non-empty string, got {quoted(title)}"))
    lab = data.get("lab")
    if (
        "lab" in data
        and not (isinstance(lab, str) and lab in ("running", "embedded"))
        and not (isinstance(lab, dict) and lab.get("provider") == "external")
    ):
        add(
            fail(
                "lab",
                "must be running (the `drill lab up` lab), embedded (a lab of its own) or an external "
                "target mapping with provider: external",
            )
        )
    radius = data.get("blast_radius")
    if not isinstance(radius, list) or not radius or not all(isinstance(r, str) and r for r in radius):
        if "blast_radius" in data:
            add(
                fail(
                    "blast_radius",
                    "must be a non-empty list of what faults may touch (proxy names such as db, "
                    "s3; az1..az3; database-primary; a platform)",
                )
            )
        radius = ()
    radius = tuple(radius)
    if isinstance(lab, dict) and lab.get("provider") == "external":
        # checked now as `drill chaos` will read it (with the plan's blast radius), so that validate
        # says what is wrong with the target's keys, not the run
        from ..lab.providers import external_spec

        checked(add, external_spec, {**lab, "blast_radius": list(radius)}, fail)
    environment = None
    external = isinstance(lab, dict) and lab.get("provider") == "external"
    if external or (isinstance(lab, str) and lab in ("running", "embedded")):
        from ..environments import parse_plan_environment

        # a lab (running, embedded) is class lab; an external target says staging or production
        environment = checked(
            add, parse_plan_environment, data.get("environment"), "external" if external else lab, fail
        )
    workload = data.get("workload", "writes")
    if not (isinstance(workload, str) and workload in ("writes", "probes")):
        add(fail("workload", f"must be writes or probes, got {quoted(workload)}"))

    steps = []
    faults = data.get("faults") or []
    if not isinstance(faults, list):
        add(fail("faults", "must be a list of {type, target, params, duration, after}"))
        faults = []
    for i, item in enumerate(faults):
        step = checked(add, _parse_step, i, item, radius, fail)
        if step is not None:
            steps.append(step)

    game_day, gap = checked(add, _parse_game_day, data.get("game_day"), radius, fail, default=({}, (1.0, 5.0)))
    if not faults and not data.get("game_day"):
        add(fail("faults", "a chaos plan needs faults, or a game_day allowed set for --seed runs"))
    stop = dict(DEFAULT_STOP)
    given = data.get("stop_conditions") or {}
    if not isinstance(given, dict):
        add(fail("stop_conditions", "must be a mapping: probe_failing_s, error_budget_s"))
        given = {}
    for key, value in given.items():
        if not isinstance(key, str) or key not in STOP_KEYS:
            add(
                fail(
                    f"stop_conditions.{quoted(key, 30).strip(chr(39))}",
                    f"unknown; known: {', '.join(sorted(STOP_KEYS))}",
                )
            )
            continue
        stop[key] = checked(add, parse_duration, value, fail, f"stop_conditions.{key}", default=0.0)
    given_targets = data.get("targets") or {}
    waivers = parse_waivers(data.get("waivers"), fail, add)
    targets = _parse_targets(given_targets, None, fail, add, waivers)
    waivers = bind(waivers, targets, None)
    # a chaos run judges RTO per fault and lost writes; the backup and failover RPO only when asked
    given_keys = set(given_targets) if isinstance(given_targets, dict) else set()
    targets = {k: v for k, v in targets.items() if k in ("rto_seconds", "lost_writes") or k in given_keys}
    targets.setdefault("lost_writes", 0.0)
    availability = checked(add, parse_availability, data.get("availability"), fail, default=AvailabilityPolicy())
    description = data.get("description") or ""
    if not isinstance(description, str):
        add(fail("description", f"must be text, got {quoted(description)}"))
    if found:
        raise found[0]
    assert environment is not None  # no error: the lab is running, embedded or external
    return ChaosPlan(
        path=path,
        chaos=str(chaos),
        title=str(title).strip(),
        lab=lab,
        blast_radius=radius,
        workload=workload,
        waivers=waivers,
        steps=tuple(steps),
        game_day=game_day,
        gap=gap,
        stop=stop,
        targets=targets,
        description=str(description),
        availability=availability,
        environment=environment,
    )


def _parse_step(i: int, item: Any, radius: tuple[str, ...], fail) -> Step:
    where = f"faults[{i}]"
    if not isinstance(item, dict) or set(map(str, item)) - {"type", "target", "params", "duration", "after"}:
        raise fail(where, "must be a mapping with keys type, target, params and duration, after")
    if "type" not in item or "target" not in item or "duration" not in item:
        raise fail(where, "needs type, target and duration")
    duration = parse_duration(item["duration"], fail, f"{where}.duration")
    if duration <= 0:
        raise fail(f"{where}.duration", "must be more than 0")
    if not isinstance(item["target"], str):
        raise fail(f"{where}.target", f"must be a name, got {quoted(item['target'])}")
    _radius_check(item["target"], radius, where, fail)
    spec = _spec(item["type"], item["target"], item.get("params") or {}, duration, where, fail)
    return Step(f"{i + 1}:{spec.type}", spec, duration, parse_duration(item.get("after", 0), fail, f"{where}.after"))


def _range(value: Any, fail, key: str) -> tuple[float, float]:
    if isinstance(value, list) and len(value) == 2:
        low, high = (parse_duration(v, fail, key) for v in value)
    else:
        low = high = parse_duration(value, fail, key)
    if high < low:
        raise fail(key, f"the range must be [low, high], got {quoted(value)}")
    return low, high


def _parse_game_day(value: Any, radius: tuple[str, ...], fail) -> tuple[dict[str, Template], tuple[float, float]]:
    if value is None:
        return {}, (1.0, 5.0)
    if (
        not isinstance(value, dict)
        or set(map(str, value)) - {"faults", "gap"}
        or not isinstance(value.get("faults"), dict)
    ):
        raise fail("game_day", "must be a mapping with faults (name -> {type, targets, params, duration}) and gap")
    gap = _range(value.get("gap", [1, 5]), fail, "game_day.gap")
    if gap[0] < MIN_GAME_DAY_S:
        raise fail(
            "game_day.gap",
            f"must be at least {MIN_GAME_DAY_S * 1000:g} ms between two faults, got "
            f"{quoted(value.get('gap'))}; e.g. [1s, 5s]",
        )
    templates = {}
    for name, item in value["faults"].items():
        where = f"game_day.faults.{quoted(name, 40).strip(chr(39))}"
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_-]{1,63}", name):
            raise fail(where, "a fault's name is lowercase letters, digits, '_' and '-'")
        if not isinstance(item, dict) or set(map(str, item)) - {"type", "targets", "params", "duration"}:
            raise fail(where, "must be a mapping with keys type, targets, params and duration")
        targets = item.get("targets")
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
            raise fail(f"{where}.targets", "must be a non-empty list of names")
        duration = _range(item.get("duration", [2, 6]), fail, f"{where}.duration")
        if duration[0] < MIN_GAME_DAY_S:
            raise fail(
                f"{where}.duration",
                f"must be at least {MIN_GAME_DAY_S * 1000:g} ms, got {quoted(item.get('duration'))}; e.g. [2s, 6s]",
            )
        params = item.get("params") or {}
        if not isinstance(params, dict):
            raise fail(f"{where}.params", "must be a mapping")
        for target in targets:
            _radius_check(target, radius, where, fail)
            for pick in (0, 1):  # both ends of every range must make a valid fault
                chosen = {k: (v[pick] if isinstance(v, list) and len(v) == 2 else v) for k, v in params.items()}
                _spec(item.get("type"), target, chosen, duration[1], where, fail)
        for key, v in params.items():  # draw() picks in a range of numbers: it must be one
            if isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v) and v[1] < v[0]:
                raise fail(f"{where}.params.{key}", f"the range must be [low, high], got {quoted(v)}")
        templates[name] = Template(item["type"], tuple(targets), dict(params), duration)
    return templates, gap


def load_chaos_plan(path: str | Path, errors: list[PlanError] | None = None) -> ChaosPlan:
    path = Path(path)
    return parse_chaos_plan(read_yaml(path, "no such chaos plan; see drills/chaos/ for examples"), path, errors)


def draw(plan: ChaosPlan, seed: int, duration_s: float, names: list[str] | None = None) -> tuple[Step, ...]:
    """A random game day: faults drawn one after another from the plan's allowed set (all, or
    `names`), each target, parameter in range, duration and gap drawn from a generator seeded
    with `seed`, until `duration_s` is filled. The same plan, seed and duration give the same
    sequence."""
    where = shown(plan.path)
    if not plan.game_day:
        raise PlanError(f"{where}: key 'game_day': --seed needs the plan's game_day allowed set")
    names = sorted(names or plan.game_day)
    unknown = [n for n in names if n not in plan.game_day]
    if unknown:
        raise PlanError(
            f"--faults {printable(','.join(unknown), 200)}: not in {where}'s game_day allowed set "
            f"({', '.join(sorted(plan.game_day))})"
        )
    rng = random.Random(seed)
    steps: list[Step] = []
    t = 0.0
    while True:
        gap = round(rng.uniform(*plan.gap), 1)
        name = rng.choice(names)
        template = plan.game_day[name]
        target = rng.choice(template.targets)
        params = {k: _pick(rng, v) for k, v in sorted(template.params.items())}
        duration = round(rng.uniform(*template.duration), 1)
        if t + gap + duration > duration_s:
            break
        if len(steps) == MAX_DRAWN:  # each draw takes 100 ms at least, so this loop ends; bounded anyway
            raise PlanError(
                f"--duration {duration_s:g}s would draw more than {MAX_DRAWN} faults with {where}'s "
                f"game_day.gap of {plan.gap[0]:g}-{plan.gap[1]:g} s; give a shorter --duration, or "
                f"a longer gap or fault durations in the plan"
            )
        spec = _spec(
            template.type,
            target,
            params,
            duration,
            f"game_day.faults.{name}",
            lambda key, message: PlanError(printable(f"{where}: key '{key}': {message}")),
        )
        steps.append(Step(f"{len(steps) + 1}:{name}", spec, duration, gap))
        t += gap + duration
    if not steps:
        raise PlanError(f"--duration {duration_s:g}s is too short for one fault of the allowed set with its gap")
    return tuple(steps)


def _pick(rng: random.Random, value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        low, high = value
        if isinstance(low, int) and isinstance(high, int):
            return rng.randint(low, high)
        return round(rng.uniform(low, high), 3)
    return value
