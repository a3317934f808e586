"""The "event store write blocked" fault on a database node: a real lock, not a stand-in.

A superuser session on the node opens a transaction and takes
``LOCK TABLE event_chain_head IN EXCLUSIVE MODE``, then stays idle in it. Reads of the event
store still work (EXCLUSIVE does not conflict with plain SELECT); every appender's
``SELECT ... FOR UPDATE`` of the chain head waits, so no audit event can be written. Releasing
it rolls the transaction back; should the harness die, the closed socket ends the session and
the lock with it, so a killed run leaves nothing behind. With a time limit, PostgreSQL itself
ends the session (``idle_in_transaction_session_timeout``), and the lock with it, once it has
sat that long idle in its transaction: a dead-man switch also for a harness that hangs. A node
that is gone (fenced by the failover) took the lock with it: releasing is then a no-op.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import psycopg

APPLICATION_NAME = "drill-fault-event-store-block"
LOCK_WAIT_S = 10  # how long taking the lock may wait for in-flight appenders
MAX_IDLE_MS = 2**31 - 1  # PostgreSQL's largest idle_in_transaction_session_timeout


class EventStoreWriteBlock:
    """A held EXCLUSIVE lock on event_chain_head of one node; release() ends it (idempotent)."""

    def __init__(self, node: str, conn: psycopg.Connection):
        self.node = node
        self._conn: psycopg.Connection | None = conn

    @classmethod
    def hold(
        cls, node: str, connect: Callable[..., psycopg.Connection], time_limit_s: float | None = None
    ) -> EventStoreWriteBlock:
        """Take the lock through connect(**kwargs) (a superuser connection to the application
        database). With time_limit_s, PostgreSQL ends the session (and the lock) by itself after
        that long; without, it holds until release(). Raises psycopg.Error (connection closed)
        when it cannot be taken, ValueError for a time limit that is not > 0 seconds."""
        idle_ms = 0
        if time_limit_s is not None:
            if (
                isinstance(time_limit_s, bool)
                or not isinstance(time_limit_s, (int, float))
                or not math.isfinite(time_limit_s)
                or time_limit_s <= 0
            ):
                raise ValueError(f"time_limit_s must be a number of seconds > 0, got {time_limit_s!r}")
            idle_ms = min(max(1, round(time_limit_s * 1000)), MAX_IDLE_MS)
        conn = connect(autocommit=False, application_name=APPLICATION_NAME)
        try:
            conn.execute(f"SET lock_timeout = '{LOCK_WAIT_S}s'")
            conn.execute(f"SET idle_in_transaction_session_timeout = {idle_ms}")
            conn.execute("LOCK TABLE event_chain_head IN EXCLUSIVE MODE")  # held until release()
        except BaseException:
            conn.close()
            raise
        return cls(node, conn)

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.closed and not self._conn.broken

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.rollback()
        except psycopg.Error:
            pass  # the node is gone (fenced): so is the lock
        finally:
            conn.close()

    def describe(self) -> str:
        return f"LOCK TABLE event_chain_head IN EXCLUSIVE MODE held on {self.node}"
