"""The lab's failover controller never stops watching silently: a probe that fails in a way it does
not know is recorded as a failover error (state "error", event failover_error), so the drill's
gates and the next steady-state check see it, instead of "watching" with nobody watching."""

from __future__ import annotations

from types import SimpleNamespace

from harness.lab.failover import FailoverController


class BrokenProbe(FailoverController):
    def _probe(self, node):
        raise RuntimeError(f"cannot probe {node.name}")


def test_a_probe_that_raises_the_unexpected_is_a_recorded_failover_error():
    events = []
    cluster = SimpleNamespace(primary=SimpleNamespace(name="pg0"))
    controller = BrokenProbe(cluster, None, "db", "pg1", on_event=lambda *event: events.append(event), interval=0.01)
    controller.start()
    try:
        assert controller.wait_failed_over(timeout=30) is False
    finally:
        controller.stop()
    assert controller.state == "error"
    assert events == [("failover_error", "pg1", {"error": "probe: RuntimeError: cannot probe pg0"})]
