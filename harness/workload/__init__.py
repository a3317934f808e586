"""The client side of a drill: sequenced writes and probes that record a History, never judge."""

from .client import ApiClient, ControlPlane, Reply, Request
from .recorder import Recorder
from .runners import Prober, SequencedWriter

__all__ = ["ApiClient", "ControlPlane", "Prober", "Recorder", "Reply", "Request", "SequencedWriter"]
