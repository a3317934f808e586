"""Where a run ran, and which runs count (issue 24, "lab runs are rehearsals").

Every run records `environment: {class, name}`:
- class `lab` for the embedded and container labs (and the `drill lab up` lab a chaos plan runs
  on), always: a lab run is a rehearsal, never evidence about the deployment;
- for an external target, what the plan says: `environment: {class: staging|production, name}`
  (required; `lab` is accepted too, for a lab standing in for a target).

Only the classes of the counting policy make an HA domain's quarterly drill current:
`--count staging,production` by default. A team that wants lab runs to count says so
(`--count lab,staging,production`) and every output then warns that lab runs are counted.

Pure: no clock, no network. CAB lines older than the `environment` record carry only the text
`environment_class` ("embedded lab: ...", "containers: ...", "external: NAME"): a lab-like one
reads `lab`, anything else `unknown`, which no policy counts.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .inputs import printable

LAB, STAGING, PRODUCTION, UNKNOWN = "lab", "staging", "production", "unknown"
CLASSES = (LAB, STAGING, PRODUCTION)
DEFAULT_COUNT: tuple[str, ...] = (STAGING, PRODUCTION)
# The one place a lab provider is said to be a lab (the harness starts it; a run on it is class lab), with
# the name a run on it records: harness.lab.providers derives its LABS from this and refuses, when it is
# imported, a name here that is not one of its PROVIDERS. `running` is a chaos plan's `drill lab up` lab.
LABS = {"embedded": "embedded lab", "testcontainers": "container lab"}
RUNNING = "running"
LAB_PROVIDERS = {**LABS, RUNNING: "running lab (drill lab up)"}
REHEARSAL = "REHEARSAL - lab run, not evidence about the deployment"
EXAMPLE = "environment: {class: staging, name: staging-eu}"
# the first word of an old line's environment_class that says it ran on a lab
_LAB_WORDS = {"embedded", "containers", "container", "testcontainers", "lab"}
_WORD = re.compile(r"[a-z]+")


def parse_plan_environment(value: Any, provider: str, fail: Callable[[str, str], Exception]) -> dict[str, str]:
    """The plan's `environment` key for a lab of `provider` (embedded, testcontainers, external;
    a chaos plan's running or embedded), as {class, name}. A lab is class lab whatever the plan
    says (staging or production is refused); an external target must say its class and name."""
    lab_name = LAB_PROVIDERS.get(provider)
    if value is None:
        if lab_name is not None:
            return {"class": LAB, "name": lab_name}
        raise fail(
            "environment",
            f"missing: a run against an external target must say what it is, e.g. {EXAMPLE} "
            f"(class staging or production; lab for a lab standing in for a target)",
        )
    if not isinstance(value, dict):
        raise fail("environment", f"must be a mapping {{class, name}}, e.g. {EXAMPLE}")
    unknown = sorted(str(k)[:40] for k in value if k not in ("class", "name"))
    if unknown:
        raise fail(f"environment.{unknown[0]}", "unknown key; known: class, name")
    cls = value.get("class")
    if not (isinstance(cls, str) and cls in CLASSES):
        raise fail("environment.class", f"must be one of {', '.join(CLASSES)}, e.g. {EXAMPLE}")
    if lab_name is not None and cls != LAB:
        raise fail(
            "environment.class",
            f"a run on the {lab_name} is a rehearsal: its class is lab, never {cls}; "
            f"{cls} needs the deployment itself (lab: {{provider: external, ...}})",
        )
    name = value.get("name", lab_name)
    if not isinstance(name, str) or not name.strip() or not name.isprintable() or len(name) > 200:
        raise fail(
            "environment.name",
            "required: one line naming the environment (no control character, at most 200 characters), e.g. staging-eu",
        )
    return {"class": cls, "name": name.strip()}


def run_environment(plan_environment: Mapping[str, Any] | None, provider: str | None) -> dict[str, str]:
    """What a run records: the plan's {class, name}, except that a lab provider is always lab."""
    env = dict(plan_environment or {})
    cls, name = env.get("class"), env.get("name")
    if provider in LAB_PROVIDERS or cls not in CLASSES:
        cls = LAB
        if provider in LAB_PROVIDERS and not (isinstance(name, str) and name):
            name = LAB_PROVIDERS[provider]
    return {"class": cls, "name": str(name or LAB_PROVIDERS.get(str(provider), "lab"))}


def class_of_text(text: Any) -> str:
    """The class an old CAB line's or results' `environment_class` text stands for: lab for the
    labs ("embedded lab: ...", "containers: ...", "lab (embedded)"), else unknown."""
    if not isinstance(text, str):
        return UNKNOWN
    first = _WORD.search(text.lower())
    return LAB if first and first.group() in _LAB_WORDS else UNKNOWN


def environment_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """{class, name} of a CAB line or a results.json: its `environment` record when it has one
    (results: class beside the host's description), else from `environment_class` (older runs),
    else lab when its provider is a lab's; class unknown otherwise."""
    env = record.get("environment")
    env = env if isinstance(env, Mapping) else {}
    cls, name = env.get("class"), env.get("name")
    if isinstance(cls, str) and cls in CLASSES:
        return {"class": cls, "name": name if isinstance(name, str) else None}
    cls = class_of_text(record.get("environment_class"))
    if cls == UNKNOWN and env.get("provider") in LAB_PROVIDERS:
        cls = LAB
    text = record.get("environment_class")
    return {"class": cls, "name": text if isinstance(text, str) and text else None}


def class_of(record: Mapping[str, Any]) -> str:
    return environment_of(record)["class"]


def counts(record: Mapping[str, Any], count: Iterable[str] = DEFAULT_COUNT) -> bool:
    """The record's class is one the policy counts (unknown never is)."""
    return class_of(record) in set(count)


def parse_count(text: str) -> tuple[str, ...]:
    """--count's value: classes separated by commas (lab, staging, production), in that order."""
    given = [c.strip() for c in str(text).split(",") if c.strip()]
    bad = [c for c in given if c not in CLASSES]
    if bad or not given:
        raise ValueError(
            f"{printable(text, 60)!r}: give classes of {', '.join(CLASSES)} separated by commas, e.g. "
            f"--count staging,production (the default) or --count lab,staging,production"
        )
    return tuple(c for c in CLASSES if c in given)


def count_type(text: str) -> tuple[str, ...]:
    """parse_count as an argparse type (exit 2 naming the value)."""
    try:
        return parse_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_count_arg(parser: argparse.ArgumentParser, what: str = "an HA domain's quarterly drill") -> None:
    parser.add_argument(
        "--count",
        type=count_type,
        default=DEFAULT_COUNT,
        metavar="CLASSES",
        help=f"environment classes whose runs count toward {what} (default "
        f"{','.join(DEFAULT_COUNT)}; lab runs are rehearsals: --count lab,staging,production "
        f"counts them, with a warning on every output)",
    )


def labs_counted(count: Iterable[str]) -> bool:
    return LAB in set(count)


def count_words(count: Iterable[str]) -> str:
    """ "staging or production" for a policy."""
    chosen = [c for c in CLASSES if c in set(count)]
    return " or ".join(chosen) if chosen else "no class"


def lab_warning(count: Iterable[str]) -> str | None:
    """The warning every output carries when the policy counts lab runs, else None."""
    if not labs_counted(count):
        return None
    return (
        f"WARNING: lab runs counted (--count {','.join(c for c in CLASSES if c in set(count))}): a lab run is a "
        f"rehearsal, not evidence about the deployment; an HA domain made current by one has not been drilled"
    )
