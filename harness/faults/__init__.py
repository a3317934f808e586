"""The nemesis: fault types by name, each with its heal, and the reset that clears a killed run."""

from ..toxiproxy.client import ToxiproxyControl
from . import backup, containers, eventstore, network, platforms, processes  # noqa: F401  (register the fault types)
from .base import REGISTRY, Fault, FaultContext, FaultError, build, injected, spec_from_dict
from .journal import FaultJournal

__all__ = [
    "REGISTRY",
    "Fault",
    "FaultContext",
    "FaultError",
    "FaultJournal",
    "ToxiproxyControl",
    "build",
    "injected",
    "spec_from_dict",
]
