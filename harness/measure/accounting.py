"""Lost, duplicated, recovered and unexpected writes, judged against the final read (Jepsen set accounting)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from harness.model import History, Op, Outcome

FINAL_READ = "final_read"
WRITE = "write"


class NoFinalRead(LookupError):
    """The history has no successful final read, so no write can be judged lost or kept.

    Raised rather than answering "nothing lost": a gate built on it must become unknown.
    """


@dataclass(frozen=True)
class WriteAccounting:
    """What happened to every write, after recovery.

    attempted: write ops invoked (any outcome). acknowledged: write ops that ended ok.
    lost: keys acknowledged ok but absent from the final read, ordered by acknowledgement.
    recovered_indeterminate: keys of writes that ended info (outcome unknown to the client),
    were never acknowledged ok, and are present in the final read; absent ones are not lost.
    duplicated: one entry per extra copy in the final read (a key read 3 times appears twice).
    unexpected: keys in the final read that no write ever attempted.
    """

    attempted: int
    acknowledged: int
    lost: tuple[Hashable, ...]
    recovered_indeterminate: tuple[Hashable, ...]
    duplicated: tuple[Hashable, ...]
    unexpected: tuple[Hashable, ...]

    @property
    def lost_count(self) -> int:
        return len(self.lost)

    @property
    def duplicated_count(self) -> int:
        return len(self.duplicated)


def final_read_op(history: History, read: str = FINAL_READ) -> Op:
    """The last op of kind `read` that ended ok (latest completion); NoFinalRead if none."""
    reads = [op for op in history.ops if op.kind == read and op.outcome is Outcome.OK]
    if not reads:
        raise NoFinalRead(f"history has no {read.replace('_', ' ')} that completed ok; writes cannot be judged")
    return max(reads, key=lambda op: (_completion(op), op.id))


def final_read_keys(history: History, read: str = FINAL_READ) -> tuple[Hashable, ...]:
    """The keys of the final read in the order read, repeats kept. Raises NoFinalRead.

    A value of None reads as empty; a string is refused (TypeError), since iterating it
    would silently turn one key into its characters.
    """
    value: Any = final_read_op(history, read).value
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        raise TypeError("final read value must be an iterable of keys, not a single string")
    return tuple(value)


def write_accounting(history: History, writes: str = WRITE, read: str = FINAL_READ) -> WriteAccounting:
    """Account for every op of kind `writes` (its value the key written) against the last read
    of kind `read` (e.g. publishes against what the platforms applied). Raises NoFinalRead."""
    keys_read = final_read_keys(history, read)
    present = Counter(keys_read)
    written = [op for op in history.ops if op.kind == writes]
    acked = sorted((op for op in written if op.outcome is Outcome.OK), key=lambda op: (_completion(op), op.id))
    lost = _unique(op.value for op in acked if op.value not in present)
    acked_keys = {op.value for op in acked}
    recovered = _unique(
        op.value for op in written if op.outcome is Outcome.INFO and op.value in present and op.value not in acked_keys
    )
    attempted_keys = {op.value for op in written}
    duplicated = tuple(k for k, n in present.items() for _ in range(n - 1))
    unexpected = _unique(k for k in keys_read if k not in attempted_keys)
    return WriteAccounting(
        attempted=len(written),
        acknowledged=len(acked),
        lost=lost,
        recovered_indeterminate=recovered,
        duplicated=duplicated,
        unexpected=unexpected,
    )


def lost_writes(history: History) -> tuple[Hashable, ...]:
    """Keys acknowledged ok and absent from the final read, earliest acknowledged first."""
    return write_accounting(history).lost


def duplicated_writes(history: History) -> tuple[Hashable, ...]:
    """Keys read more than once in the final read, one entry per extra copy."""
    return write_accounting(history).duplicated


def acknowledged_ops(history: History, writes: str = WRITE) -> list[Op]:
    """Ops of kind `writes` that ended ok, earliest acknowledgement first."""
    ops = [op for op in history.ops if op.kind == writes and op.outcome is Outcome.OK]
    return sorted(ops, key=lambda op: (_completion(op), op.id))


def _completion(op: Op) -> float:
    return op.t_complete if op.t_complete is not None else op.t_invoke


def _unique(keys: Iterable[Hashable]) -> tuple[Hashable, ...]:
    return tuple(dict.fromkeys(keys))
