"""Registry of toxic types by name, as Toxiproxy's: an unknown type is refused."""

from .bandwidth import BandwidthToxic
from .base import AttributeError400, Chunk, End, Toxic
from .latency import LatencyToxic
from .limit_data import LimitDataToxic
from .noop import NoopToxic
from .reset_peer import ResetPeerToxic
from .slicer import SlicerToxic
from .slow_close import SlowCloseToxic
from .timeout import TimeoutToxic

REGISTRY: dict[str, type[Toxic]] = {
    t.TYPE: t
    for t in (
        NoopToxic,
        LatencyToxic,
        BandwidthToxic,
        SlowCloseToxic,
        TimeoutToxic,
        ResetPeerToxic,
        SlicerToxic,
        LimitDataToxic,
    )
}

__all__ = ["REGISTRY", "AttributeError400", "Chunk", "End", "Toxic"]
