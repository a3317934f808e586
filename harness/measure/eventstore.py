"""Event store measures (matrix row 7, "Event store write blocked"), pure functions of the recorded
operations and of event rows read from the store (as GET /events returns them).

EventStoreWriteSuccess, per clock hour (UTC) of acknowledgement: of the state changes the API
acknowledged (ok ops) that need an audit event, the share whose event was persisted exactly once.
  write   (intent created)   -> IntentCreated whose payload.idempotency_key is the op's key
  evidence / approve / publish -> EvidenceCommitted / ApprovalRecorded / Published of that intent
                                 (the key's intent id comes from its IntentCreated event)
No event is a missing one, two or more a duplicated one: neither counts as persisted.

Chain continuity across a failover: every event read before the fault is still there with the
same hash; no seq or hash appears twice; every event links to the one before it (prev_hash),
also across the boundary between the last event recorded before and the first one after.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from harness.model import Op, Outcome

GENESIS = "0" * 64
EVENT_OF = {"write": "IntentCreated", "evidence": "EvidenceCommitted", "approve": "ApprovalRecorded",
            "publish": "Published"}


@dataclass(frozen=True)
class HourWriteSuccess:
    hour: str          # the clock hour of acknowledgement, e.g. "2026-01-05T10:00Z"
    needed: int        # acknowledged state changes needing an audit event
    persisted: int     # of those, with exactly one event

    @property
    def ratio(self) -> float:
        return self.persisted / self.needed


@dataclass(frozen=True)
class WriteSuccess:
    hours: tuple[HourWriteSuccess, ...]
    missing: tuple[str, ...] = ()       # "write KEY", "approve KEY", ... without their event
    duplicated: tuple[str, ...] = ()    # ... with more than one

    @property
    def ratios(self) -> list[float]:
        return [h.ratio for h in self.hours]

    @property
    def worst(self) -> float | None:
        return min(self.ratios) if self.hours else None

    @property
    def needed(self) -> int:
        return sum(h.needed for h in self.hours)

    @property
    def persisted(self) -> int:
        return sum(h.persisted for h in self.hours)


def acknowledged_at(op: Op) -> float:
    """Epoch seconds at which op was acknowledged (its wall-clock invoke plus its latency)."""
    return op.wall_invoke + (op.t_complete - op.t_invoke)


def hour_of(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:00Z")


def write_success(ops: Iterable[Op], events: Iterable[Mapping]) -> WriteSuccess:
    """EventStoreWriteSuccess per clock hour (see the module docstring)."""
    intent_of: dict[str, int] = {}
    counts: Counter = Counter()
    for event in events:
        if event["type"] == "IntentCreated":
            key = (event.get("payload") or {}).get("idempotency_key")
            counts[("IntentCreated", key)] += 1
            intent_of.setdefault(key, event["intent_id"])
        else:
            counts[(event["type"], event["intent_id"])] += 1
    needed: Counter = Counter()
    persisted: Counter = Counter()
    missing, duplicated = [], []
    for op in sorted(ops, key=lambda o: o.id):
        if op.kind not in EVENT_OF or op.outcome is not Outcome.OK or op.t_complete is None:
            continue
        type_ = EVENT_OF[op.kind]
        ref = op.value if op.kind == "write" else intent_of.get(op.value)
        found = counts[(type_, ref)] if ref is not None else 0
        hour = hour_of(acknowledged_at(op))
        needed[hour] += 1
        if found == 1:
            persisted[hour] += 1
        else:
            (missing if found == 0 else duplicated).append(f"{op.kind} {op.value}")
    hours = tuple(HourWriteSuccess(h, needed[h], persisted[h]) for h in sorted(needed))
    return WriteSuccess(hours, tuple(missing), tuple(duplicated))


@dataclass(frozen=True)
class ChainContinuity:
    before: int                          # events recorded before the fault
    after: int                           # events read after the failover
    lost: tuple[int, ...] = ()           # seqs recorded before, absent after
    altered: tuple[int, ...] = ()        # seqs present after with another hash
    duplicated: tuple[str, ...] = ()     # "seq N" / "hash H" appearing more than once after
    broken_links: tuple[int, ...] = ()   # seqs whose prev_hash is not the previous event's hash
    last_before: int | None = None       # the boundary: last seq recorded before the fault ...
    first_after: int | None = None       # ... and the first seq after it (None: nothing new)
    boundary_linked: bool | None = None  # first_after's prev_hash is last_before's hash

    @property
    def ok(self) -> bool:
        return (not (self.lost or self.altered or self.duplicated or self.broken_links)
                and self.boundary_linked is not False)


def chain_continuity(before: Sequence[Mapping], after: Sequence[Mapping],
                     first_prev_hash: str | None = GENESIS) -> ChainContinuity:
    """Compare the events read before the fault with the whole chain read after the failover.

    `after` must start at the chain's first event when first_prev_hash is GENESIS (pass None
    when it starts mid-chain: its first link is then not checked)."""
    after = sorted(after, key=lambda e: e["seq"])
    seqs = Counter(e["seq"] for e in after)
    hashes = Counter(e["hash"] for e in after)
    duplicated = tuple([f"seq {s}" for s, n in seqs.items() if n > 1] +
                       [f"hash {h[:12]}" for h, n in hashes.items() if n > 1])
    broken = []
    prev = first_prev_hash
    for event in after:
        if prev is not None and event["prev_hash"] != prev:
            broken.append(event["seq"])
        prev = event["hash"]
    now = {e["seq"]: e["hash"] for e in after}
    lost = tuple(e["seq"] for e in before if e["seq"] not in now)
    altered = tuple(e["seq"] for e in before if e["seq"] in now and now[e["seq"]] != e["hash"])
    last_before = max(before, key=lambda e: e["seq"]) if before else None
    first_after = linked = None
    if last_before is not None:
        later = [e for e in after if e["seq"] > last_before["seq"]]
        if later:
            first_after = later[0]["seq"]
            linked = later[0]["prev_hash"] == last_before["hash"]
    return ChainContinuity(len(before), len(after), lost, altered, duplicated, tuple(broken),
                           last_before["seq"] if last_before else None, first_after, linked)
