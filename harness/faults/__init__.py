"""The nemesis: fault types by name, each with its heal, and the reset that clears a killed run."""

from . import containers, network, platforms  # noqa: F401  (register the fault types)
from . import eventstore  # noqa: F401  (registers event_store_block)
from .base import REGISTRY, Fault, FaultContext, FaultError, build, injected, spec_from_dict
from .toxiproxy_control import ToxiproxyControl

__all__ = ["REGISTRY", "Fault", "FaultContext", "FaultError", "ToxiproxyControl", "build",
           "injected", "spec_from_dict"]
