"""noop: passes data through unchanged (also what a toxic does on a connection its toxicity spared)."""

from .base import Toxic


class NoopToxic(Toxic):
    TYPE = "noop"
