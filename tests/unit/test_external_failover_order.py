"""The external provider watches a fenced failover (matrix row 7) from outside, polling the
write-blocked primary (does it answer?) and the target (does it accept writes?) in turns. The
fence must come after the promote only when the polls saw a split brain: the target writable,
and then, in a poll begun after that, the old primary still answering. Both changing between
two polls is the order the platform promises (fence, then promote): CI once failed it, because
both events were timed at the earliest moment their polls allowed."""

from __future__ import annotations

import time
from types import SimpleNamespace

from harness.lab.external import ExternalFailover


def observe(answers: list[bool], writable: list[bool]) -> dict[str, float]:
    """Run the fenced observer over scripted poll answers (the last one repeats); return each
    event's time as the runner records it (its "wall", else when it was emitted)."""
    events: dict[str, float] = {}

    def on_event(kind, name, detail):
        events.setdefault(kind, detail.get("wall", time.time()))

    def scripted(script):
        def poll(_name):  # the observer's own 20 ms between rounds keeps their times apart
            return script.pop(0) if len(script) > 1 else script[0]

        return poll

    watcher = ExternalFailover(
        SimpleNamespace(config=SimpleNamespace(failover_target="pg-b", actions={}), on_event=on_event)
    )
    watcher._answers, watcher._writable = scripted(list(answers)), scripted(list(writable))
    watcher._reconnected = lambda: True
    watcher._observe_fenced("pg-a", timeout=10)
    assert watcher.state == "failed_over", watcher.error
    return events


def test_fence_and_promote_between_the_same_two_polls_is_fence_first():
    # poll 2: pg-a answers, then pg-b is writable; poll 3: pg-a is gone. Both happened between
    # pg-a's answer in poll 2 and pg-b's in poll 2: nothing says the promote came first.
    events = observe(answers=[True, True, False], writable=[False, True])
    assert events["detect"] == events["fence"] <= events["promote"] <= events["reconnect"]


def test_the_old_primary_answering_after_the_target_was_seen_writable_is_promote_first():
    # poll 2: pg-b writable; poll 3, begun after that: pg-a still answers. An observed split brain.
    events = observe(answers=[True, True, True, False], writable=[False, True])
    assert events["fence"] > events["promote"]
