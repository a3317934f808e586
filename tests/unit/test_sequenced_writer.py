"""The sequenced writer's accounting when several of its writes run at once (the replication-cut
drill's "N writes are attempted" sends them together): each key once, and the approvals follow
the keys' own numbers, as when the writes run one after another."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from harness.model import OpKind, Outcome
from harness.workload.client import Reply
from harness.workload.recorder import Recorder
from harness.workload.runners import SequencedWriter


class AllAtOnceApi:
    """Answers every call ok; create_intent answers only once `together` writes are in flight."""

    def __init__(self, together: int):
        self.barrier = threading.Barrier(together, timeout=30)

    def create_intent(self, key: str, correlation_id: str) -> Reply:
        self.barrier.wait()
        return Reply(Outcome.OK, 201, {"id": f"id-{key}"})

    def send(self, request, correlation_id=None) -> Reply:
        return Reply(Outcome.OK, 200, {})


def writes(writer: SequencedWriter, n: int, at_once: bool) -> None:
    if at_once:
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(lambda _: writer.write_one(), range(n)))
    else:
        for _ in range(n):
            writer.write_one()


def test_writes_sent_at_once_approve_the_same_keys_as_one_after_another():
    approved = {}
    for at_once in (False, True):
        recorder = Recorder()
        api = AllAtOnceApi(together=5 if at_once else 1)
        writer = SequencedWriter(api, recorder, "k", "corr", approve_every=5)  # type: ignore[arg-type]
        writes(writer, 5, at_once)
        written = [op.value for op in recorder.ops(OpKind.WRITE)]
        assert sorted(written) == [f"k-{n:06d}" for n in range(5)], written
        approved[at_once] = [op.value for op in recorder.ops(OpKind.APPROVE)]
    assert approved[False] == ["k-000004"]
    assert approved[True] == approved[False]
