"""Background clients: a sequenced writer and a health prober, each recording into a Recorder."""

from __future__ import annotations

import threading

from ..model import Op, OpDetail, OpKind, Outcome
from .client import ApiClient, ControlPlane, Reply, Request
from .recorder import Recorder

WORKLOAD: OpDetail = {"workload": True}  # marks the sequenced writer's ops (a step's own calls do not carry it)


class _Loop(threading.Thread):
    """A daemon thread calling step() every `interval` seconds until stop()."""

    def __init__(self, name: str, interval: float):
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.step()
            self._halt.wait(self.interval)

    def step(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 30.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout)


class SequencedWriter(_Loop):
    """Writes intents with keys PREFIX-000000, PREFIX-000001, ... one at a time, in order.

    Each write is an operation of kind "write" whose value is its key (its idempotency key):
    the final read later says which acknowledged keys survived.
    """

    def __init__(
        self,
        client: ApiClient,
        recorder: Recorder,
        prefix: str,
        correlation_id: str,
        interval: float = 0.02,
        approve_every: int = 0,
    ):
        super().__init__(f"writer-{prefix}", interval)
        self.client, self.recorder = client, recorder
        self.prefix, self.correlation_id = prefix, correlation_id
        self.approve_every = approve_every
        self.sequence = 0
        self._lock = threading.Lock()

    def write_one(self) -> Op:
        with self._lock:
            number = self.sequence
            self.sequence += 1
        key = f"{self.prefix}-{number:06d}"
        intent: dict = {}

        def call():
            reply = self.client.create_intent(key, self.correlation_id)
            if reply.outcome is Outcome.OK:
                intent.update(reply.body)
            return reply

        op = self.recorder.invoke(OpKind.WRITE, call, value=key, correlation_id=self.correlation_id, detail=WORKLOAD)
        # every approve_every-th key by its own number: the same ones when writes run at once
        if intent and self.approve_every and (number + 1) % self.approve_every == 0:
            self.approve(intent["id"], key)
        return op

    def approve(self, intent_id, key: str) -> None:
        """Evidence pack, CAB approval and publish of one intent, each an operation valued by key."""
        steps = [
            (OpKind.EVIDENCE, ControlPlane.evidence(intent_id, f"evidence of {key}")),
            (OpKind.APPROVE, ControlPlane.approve(intent_id)),
            (OpKind.PUBLISH, ControlPlane.publish(intent_id)),
        ]
        for kind, request in steps:

            def call(request: Request = request) -> Reply:
                return self.client.send(request, self.correlation_id)

            op = self.recorder.invoke(
                kind, call, value=key, correlation_id=self.correlation_id, detail={"intent_id": intent_id, **WORKLOAD}
            )
            if op.outcome is not Outcome.OK:
                return

    def write(self, n: int) -> list[Op]:
        """Exactly n writes in the calling thread (for deterministic accounting)."""
        return [self.write_one() for _ in range(n)]

    def step(self) -> None:
        self.write_one()

    def final_read(self) -> Op:
        """One read of every key with this prefix: the history's final_read (value: the keys read;
        detail "published": those whose intent reads back Published)."""
        detail: OpDetail = {}  # filled by call(); the recorder merges it once call() returned

        def call():
            reply = self.client.send(ControlPlane.intents(self.prefix), self.correlation_id)
            if reply.outcome is not Outcome.OK:
                return reply.outcome, None, reply.error
            intents = reply.body["intents"]
            detail["published"] = [i["idempotency_key"] for i in intents if i.get("state") == "Published"]
            return Outcome.OK, [i["idempotency_key"] for i in intents], ""

        return self.recorder.invoke(OpKind.FINAL_READ, call, correlation_id=self.correlation_id, detail=detail)


class Prober(_Loop):
    """Probes GET /health every interval; ok only when ServiceHealth = Healthy."""

    def __init__(self, client: ApiClient, recorder: Recorder, interval: float = 0.1):
        super().__init__("prober", interval)
        self.client, self.recorder = client, recorder

    def step(self) -> None:
        self.recorder.invoke(OpKind.PROBE, self.client.health)
