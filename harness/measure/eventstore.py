"""Event store measures (matrix row 7, "Event store write blocked", and the audit chain of every
row), pure functions of the recorded operations and of event rows read from the store (as
GET /events returns them).

EventStoreWriteSuccess, per clock hour (UTC) of the attempt: of the state changes the workload
attempted that need an audit event (acknowledged, refused or indeterminate alike), the share
whose event was persisted exactly once:
  write   (intent created)   -> IntentCreated whose payload.idempotency_key is the op's key
  evidence / approve / publish -> EvidenceCommitted / ApprovalRecorded / Published of that intent
                                 (the intent id comes from its IntentCreated event)
A drill lasts seconds, the rule an hour: each hour is also projected, the rest of the hour at the
rate and success ratio of the attempts answered before the fault (see HourWriteSuccess); one in
flight when the fault struck belongs to the fault.

Chain continuity across a failover: every event read before the fault is still there with the
same hash; no seq or hash appears twice; every event's hash is recomputed from its content and
links to the one before it (prev_hash), also across the boundary between the last event recorded
before and the first one after. The hash is the store's documented format:
  hash = sha256_hex(prev_hash + canonical_json({seq, type, intent_id, correlation_id, payload}))
with sorted keys, no spaces, ASCII escapes; the first prev_hash is 64 zeros.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.model import Op, Outcome

GENESIS = "0" * 64
EVENT_OF = {
    "write": "IntentCreated",
    "evidence": "EvidenceCommitted",
    "approve": "ApprovalRecorded",
    "publish": "Published",
}
HOUR_S = 3600.0


@dataclass(frozen=True)
class HourWriteSuccess:
    """One clock hour: what the drill observed in it, and the hour projected."""

    hour: str  # the clock hour of the attempts, e.g. "2026-01-05T10:00Z"
    attempted: int  # state changes attempted that need an audit event
    persisted: int  # of those, with exactly one event
    observed_s: float  # seconds of this hour the drill's workload covered
    projected_attempted: float  # attempted + the unobserved rest of the hour at the pre-fault rate
    projected_persisted: float  # persisted + that rest at the pre-fault success ratio

    @property
    def ratio(self) -> float:
        """The drill window's rate (what was observed, the fault included)."""
        return self.persisted / self.attempted

    @property
    def projected_ratio(self) -> float:
        return self.projected_persisted / self.projected_attempted


@dataclass(frozen=True)
class WriteSuccess:
    hours: tuple[HourWriteSuccess, ...]
    missing: tuple[str, ...] = ()  # acknowledged ("write KEY", ...) without their event
    duplicated: tuple[str, ...] = ()  # with more than one event
    refused: tuple[str, ...] = ()  # refused or indeterminate, and no event
    pre_fault_rate: float | None = None  # attempts per second before the fault
    pre_fault_ratio: float | None = None  # their success ratio
    pre_fault_failed: tuple[str, ...] = ()  # attempts before the fault without exactly one event

    @property
    def attempted(self) -> int:
        return sum(h.attempted for h in self.hours)

    @property
    def persisted(self) -> int:
        return sum(h.persisted for h in self.hours)

    def worst(self, projected: bool) -> HourWriteSuccess | None:
        key = (lambda h: h.projected_ratio) if projected else (lambda h: h.ratio)
        return min(self.hours, key=key) if self.hours else None


def hour_of(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:00Z")


def _event_counts(events: Iterable[Mapping[str, Any]]) -> tuple[Counter[tuple[Any, Any]], dict[Any, Any]]:
    intent_of: dict[Any, Any] = {}
    counts: Counter[tuple[Any, Any]] = Counter()
    for event in events:
        if event["type"] == "IntentCreated":
            key = (event.get("payload") or {}).get("idempotency_key")
            counts[("IntentCreated", key)] += 1
            intent_of.setdefault(key, event["intent_id"])
        else:
            counts[(event["type"], event["intent_id"])] += 1
    return counts, intent_of


def audit_needed(ops: Iterable[Op]) -> list[Op]:
    """The workload's state-change attempts that need an audit event, in order."""
    return sorted((op for op in ops if op.kind in EVENT_OF), key=lambda o: o.id)


def events_found(op: Op, counts: Counter[tuple[Any, Any]], intent_of: dict[Any, Any]) -> int:
    """How many audit events the store holds for one state-change attempt."""
    if op.kind == "write":
        return counts[("IntentCreated", op.value)]
    ref = op.detail.get("intent_id", intent_of.get(op.value))
    return counts[(EVENT_OF[op.kind], ref)] if ref is not None else 0


def write_success(ops: Iterable[Op], events: Iterable[Mapping[str, Any]], fault_t: float | None = None) -> WriteSuccess:
    """EventStoreWriteSuccess per clock hour (see the module docstring). `fault_t` (the history
    clock) splits the attempts before the fault, whose rate and ratio project each hour."""
    counts, intent_of = _event_counts(events)
    attempts = audit_needed(ops)
    per_hour: dict[str, list[int]] = {}  # hour -> [attempted, persisted]
    span: dict[str, list[float]] = {}  # hour -> [first, last] wall time
    missing: list[str] = []
    duplicated: list[str] = []
    refused: list[str] = []
    before = [0, 0]  # attempted, persisted before the fault
    before_t: list[float] = []  # ... and when each was invoked
    failed_before = []
    for op in attempts:
        found = events_found(op, counts, intent_of)
        ok = found == 1
        hour = per_hour.setdefault(hour_of(op.wall_invoke), [0, 0])
        hour[0] += 1
        hour[1] += ok
        wall = span.setdefault(hour_of(op.wall_invoke), [op.wall_invoke, op.wall_invoke])
        wall[0], wall[1] = min(wall[0], op.wall_invoke), max(wall[1], op.wall_invoke)
        if fault_t is not None and op.done < fault_t:  # answered before the fault: its normal rate
            before[0] += 1
            before[1] += ok
            before_t.append(op.t_invoke)
            if not ok:
                failed_before.append(f"{op.kind} {op.value}: {op.error or op.outcome.value}"[:160])
        what = f"{op.kind} {op.value}"
        if found > 1:
            duplicated.append(what)
        elif found == 0:
            (missing if op.outcome is Outcome.OK else refused).append(what)
    rate: float | None = None
    ratio: float | None = None
    if before[0] >= 2 and max(before_t) > min(before_t):
        rate = (before[0] - 1) / (max(before_t) - min(before_t))
        ratio = before[1] / before[0]
    hours = []
    for hour_name, (attempted, persisted) in sorted(per_hour.items()):
        first, last = span[hour_name]
        observed = max(0.0, last - first)
        rest = max(0.0, HOUR_S - observed)
        extra = rest * rate if rate is not None else 0.0
        hours.append(
            HourWriteSuccess(
                hour_name,
                attempted,
                persisted,
                round(observed, 3),
                attempted + extra,
                persisted + extra * (ratio if ratio is not None else 0.0),
            )
        )
    return WriteSuccess(
        tuple(hours), tuple(missing), tuple(duplicated), tuple(refused), rate, ratio, tuple(failed_before)
    )


# ---- the chain ---------------------------------------------------------------------------


def canonical(seq: int, type_: str, intent_id: Any, correlation_id: str | None, payload: Any) -> str:
    return json.dumps(
        {"seq": seq, "type": type_, "intent_id": intent_id, "correlation_id": correlation_id, "payload": payload},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )


def event_hash(prev_hash: str, event: Mapping[str, Any]) -> str:
    """The hash an event must carry, recomputed from its content and its prev_hash."""
    text = prev_hash + canonical(
        event["seq"], event["type"], event.get("intent_id"), event.get("correlation_id"), event.get("payload")
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainContinuity:
    before: int  # events recorded before the fault
    after: int  # events read after the failover
    lost: tuple[int, ...] = ()  # seqs recorded before, absent after
    altered: tuple[int, ...] = ()  # seqs present after with another hash
    duplicated: tuple[str, ...] = ()  # "seq N" / "hash H" appearing more than once after
    broken_links: tuple[int, ...] = ()  # seqs whose prev_hash is not the previous event's hash
    bad_hashes: tuple[int, ...] = ()  # seqs whose hash is not the hash of their content
    last_before: int | None = None  # the boundary: last seq recorded before the fault ...
    first_after: int | None = None  # ... and the first seq after it (None: nothing new)
    boundary_linked: bool | None = None  # first_after's prev_hash is last_before's hash

    @property
    def ok(self) -> bool:
        return (
            not (self.lost or self.altered or self.duplicated or self.broken_links or self.bad_hashes)
            and self.boundary_linked is not False
        )


def chain_continuity(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]], first_prev_hash: str | None = GENESIS
) -> ChainContinuity:
    """Compare the events read before the fault with the whole chain read after the failover,
    recomputing every hash. `after` must start at the chain's first event when first_prev_hash
    is GENESIS (pass None when it starts mid-chain: its first link is then not checked)."""
    after = sorted(after, key=lambda e: e["seq"])
    seqs = Counter(e["seq"] for e in after)
    hashes = Counter(e["hash"] for e in after)
    duplicated = tuple(
        [f"seq {s}" for s, n in seqs.items() if n > 1] + [f"hash {h[:12]}" for h, n in hashes.items() if n > 1]
    )
    broken, bad = [], []
    prev = first_prev_hash
    for event in after:
        if prev is not None and event["prev_hash"] != prev:
            broken.append(event["seq"])
        if event["hash"] != event_hash(event["prev_hash"], event):
            bad.append(event["seq"])
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
    return ChainContinuity(
        len(before),
        len(after),
        lost,
        altered,
        duplicated,
        tuple(broken),
        tuple(bad),
        last_before["seq"] if last_before else None,
        first_after,
        linked,
    )
