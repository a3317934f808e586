"""Drill plans (drills/*.yaml): loaded and validated whole before anything runs."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from .calendar import never_fires, parse_blackouts
from .errors import PlanError, checked, collector, quoted, shown
from .inputs import PLAN_MAX, InputError, printable, read_capped
from .lab.providers import LABS, LabSpec, parse_lab
from .lab.providers import PROVIDERS as LAB_REGISTRY
from .matrix import matrix_order
from .measure.probes import DRILL_ALLOWANCE, PERIOD_DAYS, REGION
from .signoff import SignOff, parse_signoff
from .spec_floors import bind, floor_problems, parse_waivers
from .tags import TagExpressionError, matches

# The spec's targets: RTO <= 8 h for full recovery; RPO <= 5 min for a failover (synchronous
# replication, spec 1.2); for a restore from backup RPO <= 24 h, or <= 1 h for tier-1 apps.
DEFAULT_TARGETS = {"rto_seconds": 8 * 3600.0, "rpo_seconds": 300.0, "backup_rpo_seconds": 24 * 3600.0}
TIER1_BACKUP_RPO_SECONDS = 3600.0
KNOWN_KEYS = {
    "drill",
    "title",
    "ha_domain",
    "lab",
    "scenarios",
    "targets",
    "schedule",
    "tier",
    "description",
    "blackout",
    "owner",
    "operator",
    "approver",
    "change_ticket",
    "window",
    "availability",
    "environment",
}
KNOWN_TARGETS = {
    "rto_seconds",
    "rpo_seconds",
    "backup_rpo_seconds",
    "lost_writes",
    "availability",
    "event_count_growth",
    "detection_seconds",
    "connector_backoff",
}
KNOWN_KEYS.add("waivers")  # targets looser than the spec's floors (harness.spec_floors)
KNOWN_KEYS.add("hold_real_time")  # time rules (15 min, 24 h) may hold the fault in real time: no clock control
DRILL_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # use fullmatch: "$" would accept a trailing newline
HA_DOMAINS = ("api", "database", "evidence-store", "event-store", "connectors", "backup-restore", "all")


# Limits of a plan document (a plan is a page of YAML; anything near these is a mistake or an attack)
MAX_DEPTH = 64  # nested mappings and lists
MAX_NODES = 100_000  # nodes of the document with every alias expanded ("billion laughs")
MAX_ALIASES = 100
DAY = 86400.0
# the largest value of each target: a finite, reasonable number (a year of seconds; a billion writes)
TARGET_MAX = {
    "rto_seconds": 365 * DAY,
    "rpo_seconds": 365 * DAY,
    "backup_rpo_seconds": 365 * DAY,
    "lost_writes": 1e9,
    "availability": 1.0,
    "event_count_growth": 1e9,
    "detection_seconds": 365 * DAY,
}


class HugeNumber:
    """An integer of the plan too long for Python to read (more than 4300 digits): no plan value
    is that large, so it stands in for it and every check refuses it, naming its key."""

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"<an integer of {self.digits} digits>"


@dataclass(frozen=True)
class AvailabilityPolicy:
    """The plan's `availability:` section (every key optional): the SLO period the error budget is
    counted over (`period_days`, 30: 8,640 windows of 5 minutes), the share of that period's budget
    one scenario may use (`drill_allowance`, 0.25) and the region its windows are counted for
    (`region`, "primary": a lab is one region). The per-window target is `targets.availability`
    (the spec's 0.999)."""

    period_days: float = PERIOD_DAYS
    drill_allowance: float = DRILL_ALLOWANCE
    region: str = REGION

    def to_json(self) -> dict[str, Any]:
        return {"period_days": self.period_days, "drill_allowance": self.drill_allowance, "region": self.region}


@dataclass(frozen=True)
class Plan:
    path: Path
    drill: str
    title: str
    ha_domain: str
    lab: LabSpec
    scenarios: tuple[Path, ...]
    tags: str | None
    targets: dict[str, float] = field(default_factory=dict)
    waivers: dict = field(default_factory=dict)  # target key -> harness.spec_floors.Waiver (bound)
    schedule: str | None = None
    blackout: tuple = ()  # harness.calendar.Blackout windows: no scheduled run in them
    tier: int | None = None
    signoff: SignOff = SignOff()  # owner, operator, approver, change ticket, window (harness.signoff)
    source: bytes = b""  # the plan file as read: kept beside the results as the plan as run
    availability: AvailabilityPolicy = AvailabilityPolicy()  # the error budget's period, allowance, region
    # {class, name}: lab for a lab, the plan's staging or production for an external target (harness.environments)
    environment: dict = field(default_factory=lambda: {"class": "lab", "name": "embedded lab"})
    # without clock control (lab.clock), "N minutes pass" holds the fault that long in real time
    hold_real_time: bool = False


def read_source(path: Path, missing: str) -> bytes:
    """The bytes of a file the user names, at most PLAN_MAX (a plan is a page of YAML: /dev/zero,
    a FIFO or a 2 GiB file is refused at once, never waited on or read whole); PlanError says
    what is wrong (`missing`: what to say when there is no such file, e.g. "no such drill plan;
    see drills/ for examples")."""
    if "\0" in str(path):  # no file can have that name
        raise PlanError(f"{shown(path)}: cannot read: the path has a NUL character; name the file without it")
    try:
        return read_capped(path, PLAN_MAX, "the plan")
    except FileNotFoundError:
        raise PlanError(f"{shown(path)}: {missing}") from None
    except InputError as exc:  # its message starts with the whole path: shown() shortens it
        message, whole = str(exc), printable(path)
        raise PlanError(shown(path) + message[len(whole) :] if message.startswith(whole) else message) from None


class _Loader(yaml.SafeLoader):
    """safe_load's loader; an integer too long to read is a HugeNumber (refused by its key's
    check) and an impossible date (2026-13-45) a YAML error with its line, not a crash."""


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return SafeConstructor.construct_yaml_int(loader, node)
    except ValueError:  # more than sys.get_int_max_str_digits() digits
        return HugeNumber(sum(c.isdigit() for c in str(node.value)))


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return SafeConstructor.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError):
        raise ConstructorError(
            None,
            None,
            f"{quoted(node.value)} is not a valid date or time; write YYYY-MM-DD or an ISO 8601 time, or quote it",
            node.start_mark,
        ) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def _check_shape(text: str, where: str) -> None:
    """Refuse, from the event stream alone (nothing is built, nothing recursed), a document
    nested deeper than MAX_DEPTH, with more than MAX_ALIASES aliases, an alias of the node it
    is in, or more than MAX_NODES nodes once every alias is expanded."""
    sizes: dict[str, int | None] = {}  # anchor -> expanded node count (None: still open)
    stack: list[list] = []  # [expanded count, anchor] per open collection
    total = aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise PlanError(
                    f"{where}: line {line}: nesting too deep (more than {MAX_DEPTH} levels of "
                    f"lists and mappings); a plan is a few levels deep: flatten it"
                )
            if event.anchor:
                sizes[event.anchor] = None
            stack.append([1, event.anchor])
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            count, anchor = stack.pop()
            if anchor:
                sizes[anchor] = count
        elif isinstance(event, yaml.ScalarEvent):
            count = 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise PlanError(f"{where}: line {line}: more than {MAX_ALIASES} aliases (*name); write the values out")
            if event.anchor in sizes and sizes[event.anchor] is None:
                raise PlanError(
                    f"{where}: line {line}: alias *{shown(event.anchor)[:40]} is inside the node it "
                    f"names (a value that contains itself); write the value out"
                )
            # an undefined alias: the YAML loader says so ("" is no anchor: anchors are stored when set)
            count = sizes.get(event.anchor or "") or 1
        else:
            continue
        if stack:
            stack[-1][0] += count
            count = stack[-1][0]
        else:
            total += count
            count = total
        if count > MAX_NODES:
            what = "its aliases expand to" if aliases else "it has"
            raise PlanError(
                f"{where}: line {line}: document too large: {what} more than {MAX_NODES} values "
                f"(an alias bomb?); a plan is a page of YAML"
            )


def parse_yaml(source: bytes, path: Path) -> Any:
    where = shown(path)
    for bom, name in _BOMS:
        if source.startswith(bom):
            raise PlanError(f"{where}: {name} text; save it as UTF-8") from None
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"{where}: not UTF-8 text (byte {exc.start} is {source[exc.start]:#04x}); save it as UTF-8"
        ) from None
    try:
        _check_shape(text, where)
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f" line {mark.line + 1}:" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise PlanError(f"{where}:{line} not valid YAML: {problem[:200]}") from None
    except RecursionError:  # defence: _check_shape bounds the depth first
        raise PlanError(f"{where}: nesting too deep; a plan is a few levels deep: flatten it") from None


def read_yaml(path: Path, missing: str) -> Any:
    """The YAML document of a file the user names (read_source, then parse_yaml)."""
    return parse_yaml(read_source(path, missing), path)


def load_plan(path: str | Path, root: Path | None = None, errors: list[PlanError] | None = None) -> Plan:
    """Read and validate a plan. Feature paths resolve against `root` (the repository root).
    PlanError for the first error; with `errors`, every error of the plan is appended there
    (the first is still raised)."""
    path = Path(path)
    source = read_source(path, "no such drill plan; see drills/ for examples")
    plan = parse_plan(parse_yaml(source, path), path, root or Path.cwd(), errors)
    return replace(plan, source=source)


def parse_plan(data: Any, path: Path, root: Path, errors: list[PlanError] | None = None) -> Plan:
    """The plan in `data`. Raises the first PlanError; with `errors` given, each independent
    check that fails appends its PlanError there and parsing goes on with the other keys, so
    that every error of the plan is listed at once (then the first is raised)."""
    found: list[PlanError] = []
    try:
        return _parse_plan(data, path, root, collector(found if errors is not None else None), found)
    except PlanError as exc:
        if not any(exc is e for e in found):
            found.append(exc)
        raise found[0] from None
    finally:
        if errors is not None:
            errors.extend(found)


def _parse_plan(data: Any, path: Path, root: Path, add: Callable[[PlanError], None], found: list) -> Plan:
    where = shown(path)

    def fail(key: str, message: str) -> PlanError:
        # the key and the message may quote the plan's own text: control characters escaped
        return PlanError(printable(f"{where}: key '{key}': {message}"))

    if not isinstance(data, dict):
        raise PlanError(f"{where}: a drill plan is a mapping with keys {', '.join(sorted(KNOWN_KEYS))}")
    for key in sorted(str(k) for k in data if k not in KNOWN_KEYS):
        add(fail(key, f"unknown key; known keys: {', '.join(sorted(KNOWN_KEYS))}"))
    for key in ("drill", "title", "ha_domain", "lab", "scenarios"):
        if key not in data:
            add(fail(key, "missing; every plan needs drill, title, ha_domain, lab and scenarios"))

    drill = data.get("drill")
    if "drill" in data and (not isinstance(drill, str) or not DRILL_ID.fullmatch(drill)):
        add(
            fail("drill", f"must be an id of 1 to 63 lowercase letters, digits and '-' (one line), got {quoted(drill)}")
        )
    title = data.get("title")
    if "title" in data and (not isinstance(title, str) or not title.strip()):
        add(fail("title", f"must be a non-empty string, got {quoted(title)}"))
    ha_domain = data.get("ha_domain")
    if "ha_domain" in data and not (isinstance(ha_domain, str) and ha_domain in HA_DOMAINS):
        add(fail("ha_domain", f"must be one of {', '.join(HA_DOMAINS)}, got {quoted(ha_domain)}"))

    lab = checked(add, parse_lab, data["lab"], fail) if "lab" in data else None
    from .environments import parse_plan_environment

    raw_lab = data.get("lab")
    provider = (
        lab.provider
        if lab is not None
        else raw_lab.get("provider", "embedded")
        if isinstance(raw_lab, dict)
        else raw_lab
    )
    environment = (
        checked(add, parse_plan_environment, data.get("environment"), provider, fail)
        if _name(provider, tuple(LAB_REGISTRY))
        else None
    )
    scenarios, tags = (
        checked(add, _parse_scenarios, data["scenarios"], root, fail, default=((), None))
        if "scenarios" in data
        else ((), None)
    )
    tier = data.get("tier")
    if tier is not None and (type(tier) is not int or tier not in (1, 2, 3)):
        add(fail("tier", f"must be 1, 2 or 3, got {quoted(tier)}"))
        tier = None
    waivers = parse_waivers(data.get("waivers"), fail, add)
    targets = _parse_targets(data.get("targets") or {}, tier, fail, add, waivers)
    checked(add, check_lab_backoff, targets.get("connector_backoff"), provider, fail)
    waivers = bind(waivers, targets, tier)
    availability = checked(add, parse_availability, data.get("availability"), fail, default=AvailabilityPolicy())
    schedule = data.get("schedule")
    if schedule is not None:
        checked(add, _check_cron, schedule, fail)
    blackout = checked(add, parse_blackouts, data.get("blackout"), fail, default=())
    signoff = checked(add, parse_signoff, data, fail, default=SignOff())
    hold_real_time = data.get("hold_real_time", False)
    if not isinstance(hold_real_time, bool):
        add(
            fail(
                "hold_real_time",
                f"must be true or false (hold a time rule's fault in real time when the "
                f"target grants no clock control), got {quoted(hold_real_time)}",
            )
        )
        hold_real_time = False
    if found:
        raise found[0]
    # no error: each key holds what its check accepted
    assert isinstance(drill, str) and isinstance(title, str) and isinstance(ha_domain, str)
    assert lab is not None and environment is not None
    return Plan(
        path=path,
        drill=drill,
        title=title.strip(),
        ha_domain=ha_domain,
        lab=lab,
        waivers=waivers,
        scenarios=scenarios,
        tags=tags,
        targets=targets,
        schedule=schedule,
        blackout=blackout,
        tier=tier,
        signoff=signoff,
        availability=availability,
        environment=environment,
        hold_real_time=hold_real_time,
    )


def _name(value: Any, choices: tuple[str, ...]) -> bool:
    """value is one of the names `choices` (a list or a mapping never is: no hashing, no crash)."""
    return isinstance(value, str) and value in choices


def _parse_scenarios(value: Any, root: Path, fail) -> tuple[tuple[Path, ...], str | None]:
    """A list of .feature paths, or a tag expression (e.g. "@quarterly and @ha-domain:database"),
    parsed here so that a bad one is refused before anything starts."""
    if isinstance(value, str):
        if not value.strip().startswith(("@", "not ", "(")):
            raise fail(
                "scenarios",
                "must be a list of .feature paths or a tag expression like '@quarterly and @ha-domain:database'",
            )
        try:
            matches(value, set())  # parses the whole expression
        except TagExpressionError as exc:
            raise fail(
                "scenarios",
                f"{' '.join(str(exc).split())[:200]}; e.g. '@quarterly and (@ha-domain:database or @ha-domain:api)'",
            ) from None
        features = tuple(matrix_order((root / "scenarios").rglob("*.feature")))
        if not features:
            raise fail("scenarios", f"tag expression given but no .feature file under {root / 'scenarios'}")
        return features, value.strip()
    if not isinstance(value, list) or not value:
        raise fail("scenarios", "must be a non-empty list of .feature paths or a tag expression")
    paths = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.endswith(".feature") or "\0" in item:
            raise fail(f"scenarios[{i}]", f"must be a path to a .feature file, got {quoted(item)}")
        path = (root / item).resolve()
        try:
            is_file = path.is_file()
        except OSError:
            is_file = False
        if not is_file:
            raise fail(f"scenarios[{i}]", f"no such feature file: {shown(item)}")
        paths.append(path)
    return tuple(paths), None


def _raise(exc: PlanError) -> None:
    raise exc


def _parse_targets(
    value: Any, tier: Any, fail, add: Callable[[PlanError], None] = _raise, waivers: Any = None
) -> dict[str, float]:
    """The targets with the defaults (tier 1: a one-hour backup RPO). Each bad target goes to
    add() (by default raised); the tier is checked by the caller. A target looser than the spec's
    floor is refused unless `waivers` (harness.spec_floors.parse_waivers) waives it."""
    targets = dict(DEFAULT_TARGETS)
    if tier == 1 and type(tier) is int:
        targets["backup_rpo_seconds"] = TIER1_BACKUP_RPO_SECONDS
    if not isinstance(value, dict):
        add(fail("targets", "must be a mapping, e.g. {rto_seconds: 3600, rpo_seconds: 3600}"))
        return targets
    given: dict[str, Any] = {}  # the plan's own valid values
    for key, number in value.items():
        name = f"targets.{quoted(key, 30).strip(chr(39))}"
        if key not in KNOWN_TARGETS:
            add(fail(name, f"unknown target; known: {', '.join(sorted(KNOWN_TARGETS))}"))
            continue
        if key == "connector_backoff":  # a mapping: the connectors' configured retry policy
            policy = checked(add, parse_connector_backoff, number, fail)
            if policy is not None:
                targets[key] = policy
            continue
        problem = _target_problem(key, number)
        if problem:
            add(fail(name, f"{problem}, got {quoted(number)}"))
            continue
        targets[key], given[key] = float(number), number
    for exc in floor_problems(given, tier, waivers or {}, fail, invalid=set(value) - set(given)):
        add(exc)
    return targets


def _target_problem(key: str, number: Any) -> str | None:
    """What is wrong with a target's value, or None."""
    limit = TARGET_MAX[key]
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return "must be a number >= 0"
    if (isinstance(number, int) and not 0 <= number <= limit) or (
        isinstance(number, float) and not (math.isfinite(number) and 0 <= number <= limit)
    ):
        return f"must be a finite number between 0 and {limit:g}"
    if key in ("rto_seconds", "rpo_seconds", "backup_rpo_seconds") and number <= 0:
        return "must be > 0 seconds"
    if key == "event_count_growth" and (number < 1 or number != int(number)):
        return "must be a whole number of events >= 1"
    if key == "availability" and not 0 < number <= 1:
        return "must be a ratio in (0, 1], e.g. 0.999"
    return None


AVAILABILITY_KEYS = ("period_days", "drill_allowance", "region")
REGION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")  # use fullmatch


def parse_availability(value: Any, fail) -> AvailabilityPolicy:
    """The plan's `availability:` section: {period_days, drill_allowance, region}, each optional
    (absent: the defaults). Shared by drill and chaos plans."""
    if value is None:
        return AvailabilityPolicy()
    if not isinstance(value, dict):
        raise fail(
            "availability", f"must be a mapping, e.g. {{period_days: 30, drill_allowance: 0.25}}, got {quoted(value)}"
        )
    for key in value:
        if key not in AVAILABILITY_KEYS:
            raise fail(
                f"availability.{quoted(key, 30).strip(chr(39))}", f"unknown key; known: {', '.join(AVAILABILITY_KEYS)}"
            )
    period = value.get("period_days", PERIOD_DAYS)
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not 1 <= period <= 366:
        raise fail(
            "availability.period_days",
            f"must be a number of days from 1 to 366 (the SLO period; 30 by default), got {quoted(period)}",
        )
    allowance = value.get("drill_allowance", DRILL_ALLOWANCE)
    if isinstance(allowance, bool) or not isinstance(allowance, (int, float)) or not 0 <= allowance <= 1:
        raise fail(
            "availability.drill_allowance",
            f"must be a share of the period's error budget from 0 to 1 (0.25: a quarter), got {quoted(allowance)}",
        )
    region = value.get("region", REGION)
    if not isinstance(region, str) or not REGION_NAME.fullmatch(region):
        raise fail(
            "availability.region",
            f"must be a region's name (letters, digits, '.', '_', '-'; at most 63), got {quoted(region)}",
        )
    return AvailabilityPolicy(float(period), float(allowance), region)


CONNECTOR_BACKOFF_KEYS = ("base_seconds", "factor", "max_attempts")
SPEC_BACKOFF_FACTOR = 2.0  # spec 2, Intune Graph row: "ConnectorBackoff logic ensures 2x base interval"
LAB_PROVIDERS = LABS  # the harness starts them (harness.environments.LABS)


def parse_connector_backoff(value: Any, fail) -> dict[str, Any]:
    """targets.connector_backoff: what the deployment's connectors are configured with (the base
    interval and the maximum attempts); the factor is the spec's, 2, and nothing else."""
    name = "targets.connector_backoff"
    example = "e.g. {base_seconds: 0.5, factor: 2, max_attempts: 4}"
    if not isinstance(value, dict):
        raise fail(
            name, f"must be a mapping of the connectors' configured retry policy, {example}, got {quoted(value)}"
        )
    unknown = [k for k in value if k not in CONNECTOR_BACKOFF_KEYS]
    if unknown:
        raise fail(
            f"{name}.{quoted(unknown[0], 30).strip(chr(39))}",
            f"unknown key; known: {', '.join(CONNECTOR_BACKOFF_KEYS)}",
        )
    for key, what in (("base_seconds", "base interval"), ("max_attempts", "maximum attempts")):
        if key not in value:
            raise fail(f"{name}.{key}", f"missing: the {what} the connectors are configured with, {example}")
    base, factor, attempts = value["base_seconds"], value.get("factor", SPEC_BACKOFF_FACTOR), value["max_attempts"]
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not (math.isfinite(base) and 0 < base <= 3600):
        raise fail(
            f"{name}.base_seconds",
            f"must be the connectors' base interval in seconds, more than 0 and at most 3600, got {quoted(base)}",
        )
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor != SPEC_BACKOFF_FACTOR:
        raise fail(
            f"{name}.factor",
            f"must be 2: the spec's ConnectorBackoff doubles the interval after each failed "
            f"attempt (2x base, spec 2, Intune Graph row), got {quoted(factor)}",
        )
    if type(attempts) is not int or not 3 <= attempts <= 100:
        raise fail(
            f"{name}.max_attempts",
            f"must be a whole number from 3 to 100 (three attempts show two waits, the "
            f"least a doubling is judged on), got {quoted(attempts)}",
        )
    return {"base_seconds": float(base), "factor": SPEC_BACKOFF_FACTOR, "max_attempts": attempts}


def check_lab_backoff(policy: dict[str, Any] | None, provider: Any, fail) -> None:
    """On a lab, the plan's connector_backoff must be what the lab starts its connectors with."""
    if policy is None or (provider is not None and provider not in LAB_PROVIDERS):
        return
    from .lab.connectors import LAB_CONNECTOR_BACKOFF

    for key in ("base_seconds", "max_attempts"):
        if policy[key] != LAB_CONNECTOR_BACKOFF[key]:
            raise fail(
                f"targets.connector_backoff.{key}",
                f"the {provider or 'embedded'} lab's connectors are configured with {key} "
                f"{LAB_CONNECTOR_BACKOFF[key]:g}, the plan says {policy[key]:g}: state what the lab runs "
                f"({LAB_CONNECTOR_BACKOFF})",
            )


def _check_cron(value: Any, fail) -> None:
    from apscheduler.triggers.cron import CronTrigger

    if not isinstance(value, str):
        raise fail("schedule", "must be a cron expression string, e.g. '0 6 1 1,4,7,10 *'")
    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise fail(
            "schedule",
            f"not a valid 5-field cron expression ({quoted(str(exc), 120)}); e.g. '0 6 1 1,4,7,10 *' for quarterly",
        ) from None
    if problem := never_fires(value):  # e.g. '0 0 31 2 *': valid fields, no such day
        raise fail("schedule", problem)
