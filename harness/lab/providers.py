"""The lab providers by name (a plan's `lab.provider`), each written once: how its plan keys are
read (parse_config) and how its lab is made (factory). Plan parsing (harness.plan), the drill
runner (harness.runner.make_lab) and the chaos runner (harness.chaos) all go through PROVIDERS:
adding a provider is one entry here and its own module.

Each provider's module is imported only when it is asked for (a plan naming the embedded lab does
not load testcontainers). Nothing here imports harness.plan: the plan imports this."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..environments import LABS as LAB_NAMES
from ..errors import quoted

if TYPE_CHECKING:
    from .base import Lab

Fail = Callable[[str, str], Exception]  # (key, message) -> the error to raise (harness.plan's fail)

KNOWN_LAB = {"provider", "replication", "images"}  # a lab's keys (the external target has its own)
IMAGE_KINDS = ("postgres", "toxiproxy", "moto", "controlplane")
REPLICATION = ("sync", "async")


@dataclass(frozen=True)
class LabSpec:
    provider: str = "embedded"
    replication: str = "sync"
    external: Any = None  # harness.lab.external.ExternalConfig for provider external
    images: dict | None = None  # provider testcontainers: image per part


@dataclass(frozen=True)
class Provider:
    """One provider: parse_config reads the plan's `lab` mapping (its provider and replication
    already checked) into the LabSpec fields of its own, raising fail(key, message); factory makes
    the lab (not started) from the LabSpec and whether --confirm named the drill. Whether the
    harness starts it and configures its connectors (a lab) rather than reaching a deployment is
    harness.environments.LABS (LABS below)."""

    parse_config: Callable[[Mapping[str, Any], Fail], dict[str, Any]]
    factory: Callable[[LabSpec, bool], Lab]


def _name(value: Any, choices: tuple[str, ...] | Mapping[str, Any]) -> bool:
    """value is one of the names `choices` (a list or a mapping never is: no hashing, no crash)."""
    return isinstance(value, str) and value in choices


def _lab_keys(images_allowed: bool) -> Callable[[Mapping[str, Any], Fail], dict[str, Any]]:
    def parse(value: Mapping[str, Any], fail: Fail) -> dict[str, Any]:
        unknown = sorted(str(k) for k in value if k not in KNOWN_LAB)
        if unknown:
            raise fail(f"lab.{unknown[0]}", f"unknown key; known: {', '.join(sorted(KNOWN_LAB))}")
        images = value.get("images")
        if images is not None:
            if not images_allowed or not isinstance(images, dict):
                raise fail("lab.images", "a mapping of part to image, for provider testcontainers only")
            for kind, image in images.items():
                if not _name(kind, IMAGE_KINDS) or not isinstance(image, str):
                    raise fail(
                        f"lab.images.{quoted(kind, 30).strip(chr(39))}",
                        f"parts are {', '.join(IMAGE_KINDS)}; each an image name",
                    )
        return {"images": images}

    return parse


def _external_config(value: Mapping[str, Any], fail: Fail) -> dict[str, Any]:
    from .external import ExternalConfig

    return {"external": ExternalConfig.parse(dict(value), fail)}


def _embedded(spec: LabSpec, confirmed: bool) -> Lab:
    from .embedded import EmbeddedLab

    return EmbeddedLab(replication=spec.replication)


def _containers(spec: LabSpec, confirmed: bool) -> Lab:
    from .containers import ContainerLab

    return ContainerLab(replication=spec.replication, images=spec.images)


def _external(spec: LabSpec, confirmed: bool) -> Lab:
    from .external import ExternalLab

    return ExternalLab(spec.external, confirmed, replication=spec.replication)


PROVIDERS: dict[str, Provider] = {  # in the order a message names them
    "embedded": Provider(_lab_keys(images_allowed=False), _embedded),
    "testcontainers": Provider(_lab_keys(images_allowed=True), _containers),
    "external": Provider(_external_config, _external),
}


def labs(providers: Mapping[str, Provider], lab_names: Mapping[str, str]) -> tuple[str, ...]:
    """The providers that are labs (the harness starts them), in the registry's order: those
    harness.environments names as labs. A lab name that is no provider is refused (TypeError),
    so the two never drift apart."""
    stray = sorted(set(lab_names) - set(providers))
    if stray:
        raise TypeError(
            f"harness.environments.LABS names {', '.join(stray)}, which is no provider of "
            f"harness.lab.providers.PROVIDERS ({', '.join(providers)})"
        )
    return tuple(name for name in providers if name in lab_names)


LABS = labs(PROVIDERS, LAB_NAMES)


def parse_lab(value: Any, fail: Fail) -> LabSpec:
    """A plan's `lab`: a provider's name, or a mapping with `provider` (default embedded),
    `replication` and the provider's own keys."""
    if isinstance(value, str):
        value = {"provider": value}
    if not isinstance(value, dict):
        raise fail("lab", f"must be a provider name (embedded) or a mapping with 'provider', got {quoted(value)}")
    provider = value.get("provider", "embedded")
    if not _name(provider, PROVIDERS):
        raise fail("lab.provider", f"must be one of {', '.join(PROVIDERS)}, got {quoted(provider)}")
    replication = value.get("replication", "sync")
    if not _name(replication, REPLICATION):
        raise fail("lab.replication", f"must be sync or async, got {quoted(replication)}")
    return LabSpec(provider, replication, **PROVIDERS[provider].parse_config(value, fail))


def external_spec(value: Mapping[str, Any], fail: Fail) -> LabSpec:
    """The LabSpec of an external target from its mapping (a chaos plan's `lab`, or the running
    `drill lab up` lab's): its replication the default, as `drill chaos` has always used it."""
    return LabSpec("external", **PROVIDERS["external"].parse_config(value, fail))


def make_lab(spec: LabSpec, confirmed: bool = False) -> Lab:
    """The spec's lab, not started. `confirmed`: --confirm named the drill's id."""
    return PROVIDERS[spec.provider].factory(spec, confirmed)
