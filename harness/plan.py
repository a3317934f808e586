"""Drill plans (drills/*.yaml): loaded and validated whole before anything runs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .matrix import matrix_order
from .signoff import SignOff, parse_signoff

# The spec's targets: RTO <= 8 h for full recovery; RPO <= 5 min for a failover (synchronous
# replication, spec 1.2); for a restore from backup RPO <= 24 h, or <= 1 h for tier-1 apps.
DEFAULT_TARGETS = {"rto_seconds": 8 * 3600.0, "rpo_seconds": 300.0, "backup_rpo_seconds": 24 * 3600.0}
TIER1_BACKUP_RPO_SECONDS = 3600.0
KNOWN_KEYS = {"drill", "title", "ha_domain", "lab", "scenarios", "targets", "schedule", "tier",
              "description", "blackout", "owner", "operator", "approver", "change_ticket", "window"}
KNOWN_TARGETS = {"rto_seconds", "rpo_seconds", "backup_rpo_seconds", "lost_writes", "availability",
                 "event_count_growth"}
KNOWN_LAB = {"provider", "replication", "images"}
PROVIDERS = ("embedded", "testcontainers", "external")
IMAGE_KINDS = ("postgres", "toxiproxy", "moto", "controlplane")
REPLICATION = ("sync", "async")
DRILL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
HA_DOMAINS = ("api", "database", "evidence-store", "event-store", "connectors", "backup-restore", "all")


class PlanError(ValueError):
    """An invalid plan: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class LabSpec:
    provider: str = "embedded"
    replication: str = "sync"
    external: Any = None          # harness.lab.external.ExternalConfig for provider external
    images: dict | None = None    # provider testcontainers: image per part


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
    schedule: str | None = None
    blackout: tuple = ()          # harness.schedule.calendar.Blackout windows: no scheduled run in them
    tier: int | None = None
    signoff: SignOff = SignOff()  # owner, operator, approver, change ticket, window (harness.signoff)
    source: bytes = b""           # the plan file as read: kept beside the results as the plan as run


def read_source(path: Path, missing: str) -> bytes:
    """The bytes of a file the user names; PlanError says what is wrong (`missing`: what to say
    when there is no such file, e.g. "no such drill plan; see drills/ for examples")."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PlanError(f"{path}: {missing}") from None
    except OSError as exc:
        raise PlanError(f"{path}: cannot read: {exc.strerror}") from None


def parse_yaml(source: bytes, path: Path) -> Any:
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PlanError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None


def read_yaml(path: Path, missing: str) -> Any:
    """The YAML document of a file the user names (read_source, then parse_yaml)."""
    return parse_yaml(read_source(path, missing), path)


def load_plan(path: str | Path, root: Path | None = None) -> Plan:
    """Read and validate a plan. Feature paths resolve against `root` (the repository root)."""
    path = Path(path)
    source = read_source(path, "no such drill plan; see drills/ for examples")
    plan = parse_plan(parse_yaml(source, path), path, root or Path.cwd())
    return replace(plan, source=source)


def parse_plan(data: Any, path: Path, root: Path) -> Plan:
    def fail(key: str, message: str) -> PlanError:
        return PlanError(f"{path}: key '{key}': {message}")

    if not isinstance(data, dict):
        raise PlanError(f"{path}: a drill plan is a mapping with keys {', '.join(sorted(KNOWN_KEYS))}")
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key; known keys: {', '.join(sorted(KNOWN_KEYS))}")
    for key in ("drill", "title", "ha_domain", "lab", "scenarios"):
        if key not in data:
            raise fail(key, "missing; every plan needs drill, title, ha_domain, lab and scenarios")

    drill = data["drill"]
    if not isinstance(drill, str) or not DRILL_ID.match(drill):
        raise fail("drill", f"must be an id of lowercase letters, digits and '-', got {drill!r}")
    title = data["title"]
    if not isinstance(title, str) or not title.strip():
        raise fail("title", "must be a non-empty string")
    ha_domain = data["ha_domain"]
    if ha_domain not in HA_DOMAINS:
        raise fail("ha_domain", f"must be one of {', '.join(HA_DOMAINS)}, got {ha_domain!r}")

    lab = _parse_lab(data["lab"], fail)
    scenarios, tags = _parse_scenarios(data["scenarios"], root, fail)
    targets = _parse_targets(data.get("targets") or {}, data.get("tier"), fail)
    schedule = data.get("schedule")
    if schedule is not None:
        _check_cron(schedule, fail)
    from .schedule.calendar import parse_blackouts

    blackout = parse_blackouts(data.get("blackout"), fail)
    return Plan(path=path, drill=drill, title=title.strip(), ha_domain=ha_domain, lab=lab,
                scenarios=scenarios, tags=tags, targets=targets, schedule=schedule, blackout=blackout,
                tier=data.get("tier"), signoff=parse_signoff(data, fail))


def _parse_lab(value: Any, fail) -> LabSpec:
    if isinstance(value, str):
        value = {"provider": value}
    if not isinstance(value, dict):
        raise fail("lab", "must be a provider name (embedded) or a mapping with 'provider'")
    provider = value.get("provider", "embedded")
    if provider not in PROVIDERS:
        raise fail("lab.provider", f"must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    replication = value.get("replication", "sync")
    if replication not in REPLICATION:
        raise fail("lab.replication", f"must be sync or async, got {replication!r}")
    if provider == "external":
        from .lab.external import ExternalConfig

        return LabSpec(provider, replication, ExternalConfig.parse(value, fail))
    unknown = sorted(set(value) - KNOWN_LAB)
    if unknown:
        raise fail(f"lab.{unknown[0]}", f"unknown key; known: {', '.join(sorted(KNOWN_LAB))}")
    images = value.get("images")
    if images is not None:
        if provider != "testcontainers" or not isinstance(images, dict):
            raise fail("lab.images", "a mapping of part to image, for provider testcontainers only")
        for kind, image in images.items():
            if kind not in IMAGE_KINDS or not isinstance(image, str):
                raise fail(f"lab.images.{kind}", f"parts are {', '.join(IMAGE_KINDS)}; each an image name")
    return LabSpec(provider=provider, replication=replication, images=images)


def _parse_scenarios(value: Any, root: Path, fail) -> tuple[tuple[Path, ...], str | None]:
    """A list of .feature paths, or a tag expression (e.g. "@quarterly and @ha-domain:database")."""
    if isinstance(value, str):
        if not value.strip().startswith(("@", "not ", "(")):
            raise fail("scenarios", "must be a list of .feature paths or a tag expression like "
                                    "'@quarterly and @ha-domain:database'")
        features = tuple(matrix_order((root / "scenarios").rglob("*.feature")))
        if not features:
            raise fail("scenarios", f"tag expression given but no .feature file under {root / 'scenarios'}")
        return features, value.strip()
    if not isinstance(value, list) or not value:
        raise fail("scenarios", "must be a non-empty list of .feature paths or a tag expression")
    paths = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.endswith(".feature"):
            raise fail(f"scenarios[{i}]", f"must be a path to a .feature file, got {item!r}")
        path = (root / item).resolve()
        if not path.is_file():
            raise fail(f"scenarios[{i}]", f"no such feature file: {item}")
        paths.append(path)
    return tuple(paths), None


def _parse_targets(value: Any, tier: Any, fail) -> dict[str, float]:
    if not isinstance(value, dict):
        raise fail("targets", "must be a mapping, e.g. {rto_seconds: 3600, rpo_seconds: 3600}")
    if tier not in (None, 1, 2, 3):
        raise fail("tier", f"must be 1, 2 or 3, got {tier!r}")
    targets = dict(DEFAULT_TARGETS)
    if tier == 1:
        targets["backup_rpo_seconds"] = TIER1_BACKUP_RPO_SECONDS
    for key, number in value.items():
        if key not in KNOWN_TARGETS:
            raise fail(f"targets.{key}", f"unknown target; known: {', '.join(sorted(KNOWN_TARGETS))}")
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
            raise fail(f"targets.{key}", f"must be a number >= 0, got {number!r}")
        if key in ("rto_seconds", "rpo_seconds", "backup_rpo_seconds") and number <= 0:
            raise fail(f"targets.{key}", f"must be > 0 seconds, got {number!r}")
        if key == "event_count_growth" and (number < 1 or number != int(number)):
            raise fail(f"targets.{key}", f"must be a whole number of events >= 1, got {number!r}")
        if key == "availability" and not 0 < number <= 1:
            raise fail(f"targets.{key}", f"must be a ratio in (0, 1], e.g. 0.999, got {number!r}")
        targets[key] = float(number)
    return targets


def _check_cron(value: Any, fail) -> None:
    from apscheduler.triggers.cron import CronTrigger

    if not isinstance(value, str):
        raise fail("schedule", "must be a cron expression string, e.g. '0 6 1 1,4,7,10 *'")
    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise fail("schedule", f"not a valid 5-field cron expression ({exc}); "
                               f"e.g. '0 6 1 1,4,7,10 *' for quarterly") from None
