"""The lab's automatic database failover, as a managed PostgreSQL service would do it.

A runbook in code, watching from outside the database:
1. probe the primary on its own address every `interval` seconds;
2. after `misses` failed probes in a row, declare it failed (event "detect");
3. promote the chosen replica (event "promote");
4. repoint the client endpoint, a Toxiproxy proxy the Control Plane connects to, at the
   promoted node (event "reconnect"); open client connections are dropped by the move.
It then stays failed over: failback is a separate, gated step (failback()).

A probe misses when the primary does not answer, or (matrix row 7, "Event store write blocked")
when it answers but its event store cannot take appends: LOCK TABLE event_chain_head IN ROW
SHARE MODE (the table lock every appender's SELECT ... FOR UPDATE takes first) is not granted
within EVENT_STORE_LOCK_TIMEOUT_MS, in a transaction rolled back at once (no row lock, no WAL;
ordinary appenders, even ones waiting for a synchronous standby, never make it miss). A primary
failed that way is still alive, so it is fenced (SIGKILLed, event "fence") before the promote,
and every recovery event says {"cause": "event_store_write_blocked"}.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

from ..wait import poll

EventSink = Callable[[str, str, dict], None]

UNREACHABLE, WRITE_BLOCKED = "primary_unreachable", "event_store_write_blocked"
EVENT_STORE_LOCK_TIMEOUT_MS = 200


def transaction_lag(primary_query: Callable, replica_query: Callable) -> float:
    """TransactionLag of a replica, judged against the primary (a cut-off replica cannot see
    what it misses): 0 when it has replayed the primary's current WAL position, else the
    seconds since its last replayed transaction (an upper bound); inf when unknown.
    Each argument runs one SQL statement on its node: query(sql, params) -> rows."""
    primary_lsn = primary_query("SELECT pg_current_wal_lsn()::text")[0][0]
    caught_up, since = replica_query(
        "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn,"
        "       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8",
        (primary_lsn,),
    )[0]
    if caught_up:
        return 0.0
    return float("inf") if since is None else max(0.0, float(since))


class FailbackRefused(RuntimeError):
    """Failback was not done because the rebuilt node's TransactionLag was over the limit (`lag`:
    what the refusing action measured, None when it did not say)."""

    def __init__(self, lag: float | None, limit: float, why: str = ""):
        said = (
            f"TransactionLag {lag:.1f} s > {limit:.1f} s" if lag is not None else why or "TransactionLag over the limit"
        )
        super().__init__(f"failback refused: {said}")
        self.lag, self.limit = lag, limit


class FailoverController:
    def __init__(
        self,
        cluster: Any,
        toxiproxy: Any,
        endpoint: str,
        candidate: str,
        on_event: EventSink,
        interval: float = 0.2,
        misses: int = 3,
        replication_proxy: Callable[[str, Any], tuple[str, int]] | None = None,
        address_of: Callable[[Any], str] | None = None,
    ):
        self.cluster, self.toxiproxy, self.endpoint = cluster, toxiproxy, endpoint
        self.candidate = candidate
        self.on_event = on_event
        self.interval, self.misses = interval, misses
        self.replication_proxy = replication_proxy
        # where the client endpoint's proxy reaches a node (a container lab: its network alias)
        self.address_of = address_of or (lambda node: f"{node.host}:{node.port}")
        self.state = "watching"
        self.error: str | None = None
        # False only in the negative drill (a test sets it): a failback that ignores the lag rule,
        # which the harness's own lag samples must fail (gate transaction_lag_seconds)
        self.check_lag = True
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    # -- watching ------------------------------------------------------------------------
    def start(self) -> None:
        self._halt.clear()
        self.state = "watching"
        self._thread = threading.Thread(target=self._watch, name="failover-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(30)

    def wait_failed_over(self, timeout: float) -> bool:
        polled = poll(lambda: self.state, until=lambda s: s in ("failed_over", "error"), timeout=timeout, interval=0.02)
        return polled.value == "failed_over"

    def _probe(self, node: Any) -> str | None:
        """None when the primary is healthy, else why the probe missed (UNREACHABLE, WRITE_BLOCKED)."""
        try:
            with psycopg.connect(node.dsn, connect_timeout=1, autocommit=True) as conn:
                row = conn.execute("SELECT to_regclass('event_chain_head') IS NOT NULL").fetchone()
                has_store = row[0] if row is not None else None
                if has_store and not self._event_store_writable(conn):
                    return WRITE_BLOCKED
            return None
        except psycopg.Error:
            return UNREACHABLE

    @staticmethod
    def _event_store_writable(conn: psycopg.Connection) -> bool:
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{EVENT_STORE_LOCK_TIMEOUT_MS}ms'")
                conn.execute("LOCK TABLE event_chain_head IN ROW SHARE MODE")
                raise psycopg.Rollback()  # the lock is released at once
        except psycopg.errors.LockNotAvailable:
            return False
        except psycopg.Rollback as lost:  # the rollback itself failed (psycopg only logs that)
            raise psycopg.OperationalError("connection lost while the probe's lock was rolled back") from lost
        return True

    def _watch(self) -> None:
        missed = 0
        while not self._halt.wait(self.interval):
            try:
                primary = self.cluster.primary
                cause = self._probe(primary)
            except Exception as exc:  # never a silent end: "watching" with nobody watching fails no one over
                self._failed(f"probe: {type(exc).__name__}: {exc}")
                return
            if cause is None:
                missed = 0
                continue
            missed += 1
            if missed < self.misses:
                continue
            try:
                self.fail_over(primary, cause)
            except Exception as exc:  # recorded, and the drill's gates see no recovery
                self._failed(f"{type(exc).__name__}: {exc}")
            return

    def _failed(self, error: str) -> None:
        self.state, self.error = "error", error
        self.on_event("failover_error", self.candidate, {"error": error})

    def fail_over(self, failed: Any, cause: str = UNREACHABLE) -> None:
        why = {} if cause == UNREACHABLE else {"cause": cause}
        self.on_event("detect", failed.name, {"misses": self.misses, "interval_s": self.interval, **why})
        if cause != UNREACHABLE:  # still alive: it must not take a write once another is promoted
            self.on_event("fence", failed.name, {"signal": "SIGKILL", **why})  # from now on it is going
            failed.kill()
        target = self.cluster[self.candidate]
        target.promote()
        self.on_event("promote", target.name, why)
        self.toxiproxy.set_upstream(self.endpoint, self.address_of(target))
        self.on_event("reconnect", self.endpoint, {"upstream": self.address_of(target), **why})
        self.state = "failed_over"

    # -- after the failover: rebuild and gated failback --------------------------------------
    def rebuild(self, old_name: str, synchronous: bool) -> None:
        """Make the failed primary a replica of the new one, streaming through its own proxy; it is
        then the failover target, and the controller watches the new primary."""
        self.stop()
        new, old = self.cluster.primary, self.cluster[old_name]
        host, port = self.replication_proxy(old_name, new) if self.replication_proxy else (new.host, new.port)
        old.rebuild_as_replica_of(new, host, port, synchronous=synchronous)
        self.on_event("rebuild", old_name, {"upstream": f"{host}:{port}"})
        self.candidate = old_name
        self.start()

    def restart(self, name: str) -> None:
        """Start a killed primary again when no failover took its place; watch it again."""
        self.stop()
        self.cluster[name].start()
        self.on_event("restart", name, {})
        self.start()

    def transaction_lag(self, replica_name: str) -> float:
        return transaction_lag(self.cluster.primary.query, self.cluster[replica_name].query)

    def failback(self, to_name: str, max_lag: float = 5.0, synchronous: bool = True) -> float:
        """Switch the primary role back to `to_name` only if its TransactionLag <= max_lag.

        1. measure the lag of `to_name`; over the limit -> FailbackRefused, nothing changed;
        2. stop the current primary cleanly (its WAL reaches the replica);
        3. promote `to_name`, repoint the client endpoint;
        4. rebuild the former primary as a replica of it and watch again. Returns the lag.
        """
        lag = self.transaction_lag(to_name)
        self.on_event("lag_check", to_name, {"transaction_lag_s": lag, "limit_s": max_lag})
        if lag > max_lag and self.check_lag:
            raise FailbackRefused(lag, max_lag)
        self.stop()  # the switch below stops the current primary: not a failure to fail over from
        current, target = self.cluster.primary, self.cluster[to_name]
        current.stop("fast")
        target.promote()
        self.toxiproxy.set_upstream(self.endpoint, self.address_of(target))
        self.on_event("failback", to_name, {"transaction_lag_s": lag})
        self.rebuild(current.name, synchronous=synchronous)  # and watch the restored primary again
        return lag
