"""The connector scenarios' wait for the platforms' queues to drain before any fault: what it says
in the scenario's observations (queues read through a stand-in lab: pure logic)."""

from __future__ import annotations

from types import SimpleNamespace

from harness.runner import platforms


class Scenario:
    """Each read of every platform's queue gets the next of `depths` (the last one from then on)."""

    def __init__(self, depths: list[dict[str, int]]):
        self.depths, self.calls, self.observations = depths, 0, []
        queues = SimpleNamespace(queue_depth=self.queue_depth)  # the lab's Queues part
        self.lab = SimpleNamespace(capability=lambda proto: queues)

    def queue_depth(self, platform: str) -> int:
        read = min(self.calls // len(platforms.PLATFORMS), len(self.depths) - 1)
        self.calls += 1
        return self.depths[read].get(platform, 0)

    def observe(self, text: str) -> None:
        self.observations.append(text)


def test_empty_queues_say_nothing():
    scn = Scenario([{}])
    platforms.queues_drained(scn)
    assert scn.observations == []


def test_intents_left_from_before_are_said_with_how_long_they_took():
    scn = Scenario([{"intune": 1}, {"intune": 1}, {}])
    platforms.queues_drained(scn)
    (said,) = scn.observations
    assert said.startswith("Intents queued from before (intune 1) were done ") and "before any fault" in said


def test_intents_still_queued_at_the_deadline_are_said(monkeypatch):
    monkeypatch.setattr(platforms, "DEADLINE", 0.2)
    scn = Scenario([{"jamf": 2}])
    platforms.queues_drained(scn)
    assert scn.observations == [
        "Intents were still queued from before when the platform faults began: "
        "{'intune': 0, 'jamf': 2, 'sccm': 0, 'landscape': 0, 'ansible': 0}"
    ]
