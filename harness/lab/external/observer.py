"""The external lab's failover observer: watches, from outside, the failover the platform performs."""

from __future__ import annotations

import threading
import time

import psycopg

from ...errors import LabStartError
from ...wait import wait_for
from ...workload.client import ApiClient, ControlPlane
from ..failover import UNREACHABLE, WRITE_BLOCKED, FailbackRefused, transaction_lag
from ..hooks import REFUSED, HookError
from .config import Staging


class ExternalFailover:
    """Watches a failover the platform performs (or the failover hook asks for), from outside:
    detect = the old primary stops answering; promote = the target accepts writes
    (pg_is_in_recovery() false); reconnect = the API's health reports its database part up again
    (it reaches a writable primary).

    After an event store write block (matrix row 7) the old primary still answers: the platform
    must fence it before it promotes the target. Both are watched in one loop: fence (with
    detect, cause event_store_write_blocked) = the blocked primary stops answering, timed at the
    earliest moment the polls allow (the start of the last poll it answered); promote = the
    target accepts writes, timed when a poll saw it (not_before_s says how early it may have
    been, as for the failover after a kill). So the fence comes after the promote only when a
    poll of the old primary that began after the target was seen writable still got an answer:
    an observed split brain, which the gate fails. Both changing between two polls is the order
    the platform promises, and the polls cannot tell it apart from the other."""

    def __init__(self, lab: Staging):
        self.lab = lab
        self.candidate = lab.config.failover_target
        self.state = "watching"
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def watch(self, failed: str, cause: str = UNREACHABLE) -> None:
        self.state = "failing_over"
        observe = self._observe if cause == UNREACHABLE else self._observe_fenced
        self._thread = threading.Thread(target=observe, args=(failed,), daemon=True)
        self._thread.start()

    def _answers(self, name: str) -> bool:
        try:
            self.lab.node(name).query("SELECT 1", timeout=1)
            return True
        except (psycopg.Error, LabStartError):
            return False

    def _writable(self, name: str) -> bool:
        try:
            return not self.lab.node(name).query("SELECT pg_is_in_recovery()", timeout=1)[0][0]
        except (psycopg.Error, LabStartError):
            return False

    def _reconnected(self) -> bool:
        """The API reaches a writable primary again: its health's database part is up (the whole
        ServiceHealth lags behind it: the instances' heartbeats on the new primary)."""
        client = ApiClient(self.lab.api_url, timeout=2)
        try:
            body = client.send(ControlPlane.health()).body  # None without an answer, text when not JSON
        finally:
            client.close()
        try:
            return ((body.get("components") or {}).get("database") or {}).get("status") == "up"
        except AttributeError:
            return False

    def _wait_reconnect(self, deadline: float, why: dict) -> None:
        """Emit reconnect timed at the earliest moment the polls allow: the start of the last poll
        that did not see the API reconnected (or of the first poll, when it already did). Seen from
        outside, the reconnect lies between that and the answer that saw it (window_s); a client
        write can go through inside that window, so timing it at the answer would put the
        reconnect after the first write it made possible."""
        earliest = time.time()
        while True:
            started = time.time()
            if self._reconnected():
                self.lab.on_event(
                    "reconnect",
                    "api",
                    {
                        **why,
                        "wall": earliest,
                        "window_s": round(time.time() - earliest, 3),
                        "observed": "the API reaches a writable primary",
                    },
                )
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the API did not reach a writable primary again")
            earliest = started
            time.sleep(0.02)

    def _observe(self, failed: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        target, emit = self.candidate, self.lab.on_event

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        try:
            wait_for(lambda: not self._answers(failed), f"{failed} still answers", timeout=left(), interval=0.1)
            emit("detect", failed, {"observed": "primary stopped answering"})
            hook = self.lab.config.actions.get("database_failover")
            if hook is not None:
                hook.run(failed=failed, target=target)
            in_recovery = [time.monotonic()]  # the start of the last poll that found it still a replica

            def writable() -> bool:
                started = time.monotonic()
                if self._writable(target):
                    return True
                in_recovery[0] = started
                return False

            wait_for(writable, f"{target} was not promoted", timeout=left(), interval=0.1)
            # seen from outside, a poll late: it was promoted no earlier than that last poll began
            emit(
                "promote",
                target,
                {"observed": "target accepts writes", "not_before_s": round(time.monotonic() - in_recovery[0], 3)},
            )
            self._wait_reconnect(deadline, {})
            self.state = "failed_over"
        except Exception as exc:
            self.state, self.error = "error", f"{type(exc).__name__}: {exc}"
            emit("failover_error", target, {"error": self.error})

    def _observe_fenced(self, failed: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        target, emit, why = self.candidate, self.lab.on_event, {"cause": WRITE_BLOCKED}
        fenced = promoted = False
        try:
            hook = self.lab.config.actions.get("database_failover")
            if hook is not None:
                hook.run(failed=failed, target=target, cause=WRITE_BLOCKED)
            # the fence is timed at the earliest moment the polls allow (the start of the last poll
            # that still got an answer), the promote when it was seen (not_before_s: how early)
            answering_since = writable_since = time.time()
            while not (fenced and promoted):
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{'the target was not promoted' if fenced else failed + ' was not fenced'} "
                        f"within {timeout:.0f} s"
                    )
                if not fenced:
                    started = time.time()
                    if self._answers(failed):
                        answering_since = started
                    else:
                        window = round(time.time() - answering_since, 3)
                        emit(
                            "detect",
                            failed,
                            {
                                **why,
                                "wall": answering_since,
                                "window_s": window,
                                "observed": "the write-blocked primary was fenced",
                            },
                        )
                        emit(
                            "fence",
                            failed,
                            {
                                **why,
                                "wall": answering_since,
                                "window_s": window,
                                "observed": "the write-blocked primary stopped answering",
                            },
                        )
                        fenced = True
                if not promoted:
                    started = time.time()
                    if not self._writable(target):
                        writable_since = started
                    else:
                        seen = time.time()  # on the clock the fence's time is on
                        emit(
                            "promote",
                            target,
                            {
                                **why,
                                "wall": seen,
                                "not_before_s": round(seen - writable_since, 3),
                                "observed": "target accepts writes",
                            },
                        )
                        promoted = True
                time.sleep(0.02)
            self._wait_reconnect(deadline, why)
            self.state = "failed_over"
        except Exception as exc:
            self.state, self.error = "error", f"{type(exc).__name__}: {exc}"
            emit("failover_error", target, {"error": self.error})

    def wait_failed_over(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state == "failed_over"

    def transaction_lag(self, replica: str) -> float:
        primary = self.lab.node(self.lab.current_primary())
        return transaction_lag(primary.query, self.lab.node(replica).query)

    def rebuild(self, old: str, synchronous: bool) -> None:
        """The runbook rebuilds the old primary as a replica: it is then the failover target."""
        self.lab.action("database_rebuild", node=old, synchronous=synchronous)
        self.lab.on_event("rebuild", old, {})
        self.candidate, self.state = old, "watching"

    def restart(self, name: str) -> None:
        raise RuntimeError(
            f"no failover happened and the external lab has no runbook action to start {name} "
            f"again: the platform must restore it"
        )

    def failback(self, to: str, max_lag: float = 5.0, synchronous: bool = True) -> float | None:
        """Ask the runbook hook `database_failback` to switch back to `to`. The harness does not
        check the lag first: the action owns the decision, and must refuse (409: FailbackRefused)
        or wait while the lag is over max_lag; the drill measures the lag itself meanwhile.
        Returns the lag the hook's answer names (its word only: transaction_lag_s), if any."""
        current = self.lab.current_primary()
        try:
            answer = self.lab.action("database_failback", to=to, max_lag=max_lag, synchronous=synchronous)
        except HookError as refused:
            if refused.kind == REFUSED and " answered 409" in str(refused):
                raise FailbackRefused(None, max_lag, str(refused)) from None
            raise
        said = answer.get("transaction_lag_s") if isinstance(answer, dict) else None
        lag = float(said) if isinstance(said, (int, float)) and not isinstance(said, bool) else None
        self.lab.on_event("failback", to, {"transaction_lag_s": lag, "said_by": "database_failback"})
        self.candidate, self.state = current, "watching"
        return lag
