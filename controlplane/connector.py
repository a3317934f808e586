"""A stateless connector worker: SQS intent queue -> platform API, with backoff and a dead-letter queue.

Per attempt of a message (attempt = the message's ApproximateReceiveCount when it is received,
plus one for every retry this worker made of it since):

- Test-IdempotencyKey first (spec rule 4: connectors reapply intents after failover, verifying
  Test-IdempotencyKey to avoid duplication): ``GET {platform}/applied/{key}`` (the key
  URL-encoded). 200 with "applied": true: the intent was applied already (a redelivery, a
  replay after failover): the message is deleted and counted as a duplicate skipped
  (``duplicates_skipped``; logged op "apply", outcome "duplicate", key_test "applied"), never
  POSTed again. 404 (or "applied": false): not applied, go on. Any other answer (429, 5xx,
  another 4xx), a timeout or no connection is a failed attempt like a failed apply (below:
  the same backoff, held retry and dead-letter rules; logged with key_test "failed" and a
  detail starting "Test-IdempotencyKey:"). The test is made before every attempt, retries
  included, after the platform-wide wait; it adds one short request ahead of each apply.
- ``POST {platform}/apply`` with the intent; on 200 the message is deleted (``applied`` or,
  when the platform already had that idempotency key, ``duplicate``: applied exactly once; two
  workers testing the same key at once may both apply it, and the platform's own idempotency
  answers the second as a duplicate). The body is the message's intent_id, idempotency_key,
  correlation_id and ring, plus action and rollback_id for a ring rollback.
- on 429, 5xx, a timeout or no connection, before the last attempt: wait = base x 2^(attempt-1)
  (ConnectorBackoff: each retry doubles), or the platform's Retry-After when larger, capped at
  --max-backoff, counted from the moment the failed answer came back. The worker keeps the
  message and retries it itself at exactly that moment (a schedule of held retries, earliest
  due first), rather than waiting for SQS to deliver it again (SQS visibility counts whole
  seconds and comes back only through the next receive, which would stretch every wait).
  While it is held, the message's visibility timeout is set to ceil(wait + --request-timeout
  + 2) seconds, again on every failure, and extended whenever the platform-wide wait (below)
  or a late turn would let it run out before its retry and that retry's answer: no other
  worker receives it meanwhile, and if this worker dies SQS delivers it again after that
  timeout, with a higher receive count. A message whose visibility cannot be changed is not
  held: it is left to SQS and comes back when its current visibility timeout runs out.
- the wait is platform-wide: after a failure no platform call at all (a held retry, or a
  message received meanwhile) is made before ``wait`` from then (``not_before``; a 429's
  Retry-After applies to the client). Two failing intents of one platform therefore back off
  in lockstep: each intent's gap is its own wait plus the other's, which still doubles from
  attempt to attempt while both fail (a success delays nobody: the retry after it waits only
  its own wait).
- when attempt >= --max-attempts (or the platform rejects the intent with another 4xx, or
  the message is not an intent), the message is copied to the dead-letter queue and deleted.
  Attempts are never counted ahead of what happened: a message delivered again after a worker
  died starts from its new receive count (one this worker still holds, from the higher of the
  two).

While retries are held (``retries_held`` in the metrics) the queue is polled without
long-polling (WaitTimeSeconds=0) and between polls the worker sleeps (interruptibly) RETRY_POLL_S,
or until the earliest retry is due when that is less than 2 x RETRY_POLL_S away (so no poll sits
right before a retry): no long poll makes a retry late. With none held it long-polls for --wait-time as before.
On SIGTERM/SIGINT
held retries are simply left to SQS: their visibility timeout runs out and they come back.

With ``--report-url`` every outcome is also reported to the Control Plane
(``POST /platforms/{platform}/observations``: platform health, PromotionsPaused), by a thread of
its own, in order: a slow or unreachable Control Plane never delays an attempt or a held retry
(reports it could not take are kept in order and sent again every REPORT_RETRY_S), and an idle
worker (queue empty, no retry held) probes ``GET {platform}/health`` every ``--probe-interval``,
reporting every failed answer and a return to ok.

Every operation logs one JSON line to stderr: correlation id, platform, intent id, attempt,
outcome and the wait chosen. ``--metrics-file`` is rewritten atomically every second.
The worker holds no state that must survive it: the queue is the checkpoint.
"""

from __future__ import annotations

import collections
import email.utils
import heapq
import itertools
import json
import math
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from controlplane.queues import sqs_client
from controlplane.redact import scrub, short_cause

SQS_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
MAX_VISIBILITY = 12 * 3600  # SQS limit
MAX_UNSENT_REPORTS = 1000  # reports kept while the Control Plane is unreachable (oldest dropped)
REPORT_RETRY_S = 0.5  # a report the Control Plane did not take is sent again this often
REPORT_TIMEOUT_S = 2.0
HOLD_MARGIN_S = 2  # a held message stays invisible this long past its retry's request timeout
RETRY_POLL_S = 0.25  # while retries are held: the queue is polled (without waiting) this often


@dataclass
class Settings:
    platform: str
    queue_url: str
    dlq_url: str
    sqs_endpoint: str
    platform_url: str
    base_interval: float = 0.2
    max_attempts: int = 5
    max_backoff: float = 300.0
    request_timeout: float = 5.0
    wait_time: int = 5
    metrics_file: str | None = None
    report_url: str | None = None
    probe_interval: float = 5.0


@dataclass(order=True)
class Held:
    """A message kept in-process for a retry (ordered by due time, then by when it was held)."""

    due: float  # monotonic: retry then (and not before not_before)
    seq: int
    message: dict = field(compare=False)
    attempt: int = field(compare=False)  # the attempt number of that retry
    visible_until: float = field(compare=False)  # monotonic: its visibility timeout runs out then


def backoff(base: float, attempt: int, retry_after: float | None, cap: float) -> float:
    """base x 2^(attempt-1), or Retry-After when larger, at most cap."""
    wait = base * (2 ** max(0, attempt - 1))
    if retry_after is not None:
        wait = max(wait, retry_after)
    return round(min(wait, cap), 3)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def receive_count(message: dict) -> int:
    try:
        return max(1, int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")))
    except (TypeError, ValueError):
        return 1


class Connector:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.sqs = sqs_client(settings.sqs_endpoint, timeout=settings.wait_time + 5.0)
        self.stop = threading.Event()
        self.not_before = 0.0  # monotonic: no platform call before this (platform-wide backoff)
        self.lock = threading.Lock()
        self.last_reported: str | None = None  # the last outcome class reported (sent or kept)
        self.unsent: collections.deque[dict] = collections.deque(maxlen=MAX_UNSENT_REPORTS)
        self.report_ready = threading.Condition()  # guards unsent; notified on each new report
        self.sending = threading.Lock()  # one sender at a time: no report goes twice
        self.last_probe = 0.0
        self.held: list[Held] = []  # heap: messages kept for an in-process retry, earliest due first
        self._seq = itertools.count()
        self.metrics: dict[str, Any] = {
            "platform": settings.platform,
            "processed": 0,
            "applied": 0,
            "duplicates_skipped": 0,
            "throttled": 0,
            "errors": 0,
            "dead_lettered": 0,
            "last_backoff_s": 0.0,
            "consecutive_failures": 0,
            "attempts": 0,
            "queue_errors": 0,
            "retries_held": 0,
            "key_tests": 0,
            "updated": None,
        }

    # ---- logging and metrics ---------------------------------------------------------

    def log(self, op: str, outcome: str, **fields) -> None:
        line = {
            "ts": round(time.time(), 3),
            "component": "connector",
            "platform": self.s.platform,
            "op": op,
            "outcome": outcome,
            **fields,
        }
        print(scrub(json.dumps(line)), file=sys.stderr, flush=True)

    def bump(self, **changes) -> None:
        with self.lock:
            for key, value in changes.items():
                if key in ("last_backoff_s", "consecutive_failures", "retries_held"):
                    self.metrics[key] = value
                else:
                    self.metrics[key] += value

    def write_metrics(self) -> None:
        if not self.s.metrics_file:
            return
        with self.lock:
            self.metrics["updated"] = round(time.time(), 3)
            data = json.dumps(self.metrics)
        tmp = f"{self.s.metrics_file}.tmp.{os.getpid()}"
        try:
            with open(tmp, "w") as out:
                out.write(data)
            os.replace(tmp, self.s.metrics_file)
        except OSError as exc:
            self.log("metrics", "write_failed", detail=short_cause(exc))

    def _metrics_loop(self) -> None:
        while not self.stop.wait(1.0):
            self.write_metrics()

    # ---- reports to the Control Plane ---------------------------------------------------

    def report(self, outcome: str, op: str = "apply", **fields) -> None:
        """Report the outcome to the Control Plane (platform health, PromotionsPaused, the
        outbox's applied state). Never blocks the work: the report is queued for the reporter
        thread, which keeps one the Control Plane did not take (it is down, e.g. the whole API
        tier) and sends it again, in order, before the next."""
        if not self.s.report_url:
            return
        if outcome not in ("rejected", "dead_lettered"):
            self.last_reported = outcome
        with self.report_ready:
            self.unsent.append({"outcome": outcome, "op": op, **{k: v for k, v in fields.items() if v is not None}})
            self.report_ready.notify()

    def _report_loop(self) -> None:
        while not self.stop.is_set():
            with self.report_ready:
                if not self.unsent:
                    self.report_ready.wait(REPORT_RETRY_S)
            if not self.flush_reports():
                self.stop.wait(REPORT_RETRY_S)

    def flush_reports(self) -> bool:
        """Send the kept reports, oldest first; False when the Control Plane did not take one."""
        with self.sending:
            return self._send_reports()

    def _send_reports(self) -> bool:
        if not self.s.report_url:  # nothing is queued without one (report())
            return True
        while True:
            with self.report_ready:
                if not self.unsent:
                    return True
                body = self.unsent[0]
            request = urllib.request.Request(
                f"{self.s.report_url.rstrip('/')}/platforms/{self.s.platform}/observations",
                data=json.dumps(body).encode(),
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "X-Correlation-Id": str(body.get("correlation_id") or f"connector-{self.s.platform}"),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=REPORT_TIMEOUT_S) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code >= 500:
                    self.log("report", "deferred", status=exc.code, unsent=len(self.unsent))
                    return False
                # invalid: sending it again cannot help
                self.log("report", "refused", status=exc.code, reported=body["outcome"])
            except (OSError, ValueError) as exc:  # URLError is an OSError
                self.log("report", "deferred", detail=short_cause(exc), unsent=len(self.unsent))
                return False
            with self.report_ready:
                if self.unsent and self.unsent[0] is body:  # (not pushed out by a full deque meanwhile)
                    self.unsent.popleft()

    def probe(self) -> None:
        """When idle: GET <platform>/health; report every failed answer (the Control Plane counts
        each 429 the platform sent: ThrottleCount) and an ok that differs from what was reported last."""
        self.last_probe = time.monotonic()
        outcome, status, _, _, _ = self.send(urllib.request.Request(self.s.platform_url.rstrip("/") + "/health"))
        if outcome == "rejected":  # it answered (a 4xx): the platform is up
            outcome = "ok"
        if outcome != "ok" or outcome != self.last_reported:
            self.log("probe", outcome, status=status)
            self.report(outcome, op="probe", status=status)

    # ---- platform call ---------------------------------------------------------------

    def test_key(self, intent: dict) -> tuple[str, int | None, float | None, dict | None, str]:
        """Test-IdempotencyKey: (outcome, status, retry_after, body, detail) with outcome
        "applied" (the platform has the key), "not_applied" (404, or 200 saying applied false),
        or a failure: throttled|error|timeout|unreachable (another 4xx counts as an error)."""
        key = urllib.parse.quote(str(intent.get("idempotency_key")), safe="")
        request = urllib.request.Request(
            self.s.platform_url.rstrip("/") + "/applied/" + key,
            headers={"X-Correlation-ID": str(intent.get("correlation_id"))},
        )
        self.bump(key_tests=1)
        outcome, status, retry_after, body, detail = self.send(request)
        if outcome == "ok":
            return ("applied" if (body or {}).get("applied") is True else "not_applied"), status, None, body, ""
        if outcome == "rejected":
            if status == 404:
                return "not_applied", status, None, None, ""
            outcome = "error"
        return outcome, status, retry_after, body, f"Test-IdempotencyKey: {detail}"

    def call_platform(self, intent: dict) -> tuple[str, int | None, float | None, dict | None, str]:
        """(outcome, status, retry_after, body, detail); outcome in ok|throttled|error|timeout|
        unreachable|rejected."""
        fields = [
            "intent_id",
            "idempotency_key",
            "correlation_id",
            "ring",
            *(k for k in ("action", "rollback_id") if k in intent),
        ]  # a ring rollback's
        data = json.dumps({k: intent.get(k) for k in fields})
        request = urllib.request.Request(
            self.s.platform_url.rstrip("/") + "/apply",
            data=data.encode(),
            method="POST",
            headers={"Content-Type": "application/json", "X-Correlation-ID": str(intent.get("correlation_id"))},
        )
        return self.send(request)

    def send(self, request: urllib.request.Request) -> tuple[str, int | None, float | None, dict | None, str]:
        """One platform request, classified: (outcome, status, retry_after, body, detail)."""
        try:
            with urllib.request.urlopen(request, timeout=self.s.request_timeout) as response:
                return "ok", response.status, None, json.loads(response.read() or b"{}"), ""
        except urllib.error.HTTPError as exc:
            status = exc.code
            retry_after = parse_retry_after(exc.headers.get("Retry-After"))
            exc.close()
            if status == 429:
                return "throttled", status, retry_after, None, "HTTP 429"
            if status >= 500:
                return "error", status, retry_after, None, f"HTTP {status}"
            return "rejected", status, None, None, f"HTTP {status}"
        except TimeoutError as exc:
            return "timeout", None, None, None, short_cause(exc)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                return "timeout", None, None, None, short_cause(exc)
            return "unreachable", None, None, None, short_cause(exc)
        except (OSError, ValueError) as exc:  # connection reset mid-answer, unreadable JSON
            return "error", None, None, None, short_cause(exc)

    # ---- one message -----------------------------------------------------------------

    def dead_letter(self, message: dict, attempt: int, reason: str, intent: dict) -> None:
        cid = str(intent.get("correlation_id") or "unknown")
        attributes = {
            name: {"DataType": "String", "StringValue": str(value)}
            for name, value in {
                "platform": self.s.platform,
                "reason": reason or "unknown",
                "attempts": attempt,
                "correlation_id": cid,
                "source_message_id": message.get("MessageId", ""),
            }.items()
        }
        ids = {"correlation_id": cid, "intent_id": intent.get("intent_id"), "attempt": attempt}
        try:
            self.sqs.send_message(QueueUrl=self.s.dlq_url, MessageBody=message["Body"], MessageAttributes=attributes)
            self.sqs.delete_message(QueueUrl=self.s.queue_url, ReceiptHandle=message["ReceiptHandle"])
        except SQS_ERRORS as exc:  # left in the queue: the redrive policy or a later receipt moves it
            self.bump(queue_errors=1)
            self.log("dead_letter", "queue_error", **ids, detail=short_cause(exc))
            return
        self.bump(dead_lettered=1, processed=1)
        self.log("dead_letter", "dead_lettered", **ids, reason=reason)
        self.report(
            "dead_lettered",
            op="dead_letter",
            intent_id=intent.get("intent_id"),
            attempt=attempt,
            ring=intent.get("ring"),
            correlation_id=intent.get("correlation_id"),
            idempotency_key=intent.get("idempotency_key"),
        )

    def handle(self, message: dict, attempt: int | None = None) -> None:
        """One attempt of a message: a fresh one (attempt = its receive count) or a held retry."""
        if attempt is None:
            attempt = receive_count(message)
        self.bump(attempts=1)
        try:
            intent = json.loads(message["Body"])
            if not isinstance(intent, dict) or not intent.get("intent_id") or not intent.get("idempotency_key"):
                raise ValueError("intent_id and idempotency_key required")
        except ValueError as exc:
            self.log(
                "apply",
                "malformed",
                correlation_id=None,
                intent_id=None,
                attempt=attempt,
                wait_s=None,
                detail=short_cause(exc),
            )
            self.dead_letter(message, attempt, "malformed intent", {})
            return
        ids = {
            "correlation_id": intent.get("correlation_id"),
            "intent_id": intent.get("intent_id"),
            "idempotency_key": intent.get("idempotency_key"),
            "ring": intent.get("ring"),
            "attempt": attempt,
        }
        pause = self.not_before - time.monotonic()
        if pause > 0 and self.stop.wait(pause):
            return  # stopping: the message comes back after its visibility timeout
        reported_id = intent.get("intent_id")
        outcome, status, retry_after, body, detail = self.test_key(intent)
        key_test = "failed"
        if outcome == "applied":  # applied already: never a second apply
            self.skip_applied(message, intent, ids, status, body, attempt, reported_id)
            return
        if outcome == "not_applied":
            key_test = "not_applied"
            outcome, status, retry_after, body, detail = self.call_platform(intent)
        answered = time.monotonic()  # the wait counts from the answer
        if outcome == "ok":
            applied = bool((body or {}).get("applied"))
            try:
                self.sqs.delete_message(QueueUrl=self.s.queue_url, ReceiptHandle=message["ReceiptHandle"])
            except SQS_ERRORS as exc:  # redelivered later: the platform skips the duplicate
                self.bump(queue_errors=1)
                self.log("delete", "queue_error", **ids, detail=short_cause(exc))
            self.bump(processed=1, consecutive_failures=0, **({"applied": 1} if applied else {"duplicates_skipped": 1}))
            self.log(
                "apply", "applied" if applied else "duplicate", **ids, status=status, wait_s=None, key_test=key_test
            )
            self.report(
                "ok",
                intent_id=reported_id,
                attempt=attempt,
                status=status,
                ring=intent.get("ring"),
                correlation_id=intent.get("correlation_id"),
                idempotency_key=intent.get("idempotency_key"),
            )
            return
        with self.lock:
            failures = self.metrics["consecutive_failures"] + 1
        self.bump(consecutive_failures=failures, **({"throttled": 1} if outcome == "throttled" else {"errors": 1}))
        reported: dict[str, Any] = {
            "intent_id": reported_id,
            "ring": intent.get("ring"),
            "attempt": attempt,
            "status": status,
            "retry_after_s": retry_after,
            "correlation_id": intent.get("correlation_id"),
            "idempotency_key": intent.get("idempotency_key"),
        }
        if outcome == "rejected":
            self.log("apply", outcome, **ids, status=status, wait_s=None, detail=detail, key_test=key_test)
            self.report(outcome, **reported)
            self.dead_letter(message, attempt, f"rejected: {detail}", intent)
            return
        if attempt >= self.s.max_attempts:
            self.log(
                "apply",
                outcome,
                **ids,
                status=status,
                retry_after=retry_after,
                wait_s=None,
                detail=detail,
                final=True,
                key_test=key_test,
            )
            self.report(outcome, **reported)
            self.dead_letter(message, attempt, f"{outcome} after {attempt} attempts: {detail}", intent)
            return
        wait = backoff(self.s.base_interval, attempt, retry_after, self.s.max_backoff)
        visibility = self.hold_visibility(wait)
        self.not_before = max(self.not_before, answered + wait)
        self.bump(last_backoff_s=wait)
        held = True
        try:  # invisible until the retry and its answer are past, with a margin
            self.sqs.change_message_visibility(
                QueueUrl=self.s.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=visibility
            )
        except SQS_ERRORS as exc:  # not ours to keep: it comes back after its current visibility timeout
            self.bump(queue_errors=1)
            held = False
            detail = f"{detail}; visibility not changed, left to SQS: {short_cause(exc)}"
        if held:
            heapq.heappush(
                self.held, Held(answered + wait, next(self._seq), message, attempt + 1, answered + visibility)
            )
            self.bump(retries_held=len(self.held))
        self.log(
            "apply",
            outcome,
            **ids,
            status=status,
            retry_after=retry_after,
            wait_s=wait,
            visibility_s=visibility,
            held=held,
            detail=detail,
            key_test=key_test,
        )
        self.report(outcome, wait_s=wait, **reported)

    def skip_applied(
        self, message: dict, intent: dict, ids: dict, status: int | None, body: dict | None, attempt: int, reported_id
    ) -> None:
        """Test-IdempotencyKey said the platform has the key: delete the message, count a
        duplicate skipped, report the platform ok (the dispatch is applied)."""
        try:
            self.sqs.delete_message(QueueUrl=self.s.queue_url, ReceiptHandle=message["ReceiptHandle"])
        except SQS_ERRORS as exc:  # redelivered later: tested again, skipped again
            self.bump(queue_errors=1)
            self.log("delete", "queue_error", **ids, detail=short_cause(exc))
        self.bump(processed=1, consecutive_failures=0, duplicates_skipped=1)
        self.log(
            "apply", "duplicate", **ids, status=status, wait_s=None, key_test="applied", count=(body or {}).get("count")
        )
        self.report(
            "ok",
            intent_id=reported_id,
            attempt=attempt,
            status=status,
            ring=intent.get("ring"),
            correlation_id=intent.get("correlation_id"),
            idempotency_key=intent.get("idempotency_key"),
        )

    # ---- held retries ----------------------------------------------------------------

    def hold_visibility(self, seconds: float) -> int:
        """Whole seconds of visibility covering `seconds`, then a request and the margin."""
        return min(MAX_VISIBILITY, math.ceil(seconds + self.s.request_timeout + HOLD_MARGIN_S))

    def next_retry(self) -> float | None:
        """Monotonic time at which the earliest held retry may go (its due time, not before not_before)."""
        return self._retry_time() if self.held else None

    def _retry_time(self) -> float:
        """next_retry() when a retry is held."""
        return max(self.held[0].due, self.not_before)

    def cover_held(self) -> None:
        """Keep every held message invisible past its retry: the platform-wide not_before (another
        intent's failure) or a late turn can push a retry beyond the visibility set when it was held.
        A message whose visibility cannot be extended is let go (left to SQS)."""
        now = time.monotonic()
        kept = []
        for h in self.held:
            needed = max(h.due, self.not_before, now) + self.s.request_timeout + HOLD_MARGIN_S
            if needed > h.visible_until:
                visibility = self.hold_visibility(max(h.due, self.not_before, now) - now)
                ids = {"correlation_id": None, "intent_id": None, "attempt": h.attempt}
                try:
                    intent = json.loads(h.message["Body"])
                    ids.update(correlation_id=intent.get("correlation_id"), intent_id=intent.get("intent_id"))
                except (ValueError, AttributeError):
                    pass
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.s.queue_url,
                        ReceiptHandle=h.message["ReceiptHandle"],
                        VisibilityTimeout=visibility,
                    )
                except SQS_ERRORS as exc:
                    self.bump(queue_errors=1)
                    self.log("hold", "released", **ids, visibility_s=None, detail=short_cause(exc))
                    continue
                h.visible_until = now + visibility
                self.log(
                    "hold",
                    "extended",
                    **ids,
                    visibility_s=visibility,
                    retry_in_s=round(max(h.due, self.not_before) - now, 3),
                )
            kept.append(h)
        if len(kept) != len(self.held):
            heapq.heapify(kept)
            self.held = kept
            self.bump(retries_held=len(kept))

    def accept(self, message: dict) -> None:
        """A received message: attempted now (after not_before). When it is one this worker holds
        (its visibility ran out after all), the new receipt replaces the held one."""
        attempt = receive_count(message)
        message_id = message.get("MessageId")
        same = [h for h in self.held if message_id is not None and h.message.get("MessageId") == message_id]
        if same:
            attempt = max(attempt, *(h.attempt for h in same))
            self.held = [h for h in self.held if h not in same]
            heapq.heapify(self.held)
            self.bump(retries_held=len(self.held))
        self.handle(message, attempt)

    def retry_due(self) -> None:
        """Every held retry whose time has come, earliest first."""
        while self.held and not self.stop.is_set() and self._retry_time() <= time.monotonic():
            h = heapq.heappop(self.held)
            self.bump(retries_held=len(self.held))
            self.handle(h.message, h.attempt)
            self.cover_held()

    # ---- main loop -------------------------------------------------------------------

    def run(self) -> int:
        self.write_metrics()
        threading.Thread(target=self._metrics_loop, name="metrics", daemon=True).start()
        if self.s.report_url:
            threading.Thread(target=self._report_loop, name="reports", daemon=True).start()
        self.log(
            "start",
            "ok",
            queue_url=self.s.queue_url,
            dlq_url=self.s.dlq_url,
            platform_url=self.s.platform_url,
            base_interval=self.s.base_interval,
            max_attempts=self.s.max_attempts,
        )
        queue_failures = 0
        while not self.stop.is_set():
            self.retry_due()
            if self.stop.is_set():
                break
            try:  # with retries held: no long poll, so that none of them is late
                response = self.sqs.receive_message(
                    QueueUrl=self.s.queue_url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=0 if self.held else self.s.wait_time,
                    AttributeNames=["ApproximateReceiveCount"],
                    MessageAttributeNames=["All"],
                )
            except SQS_ERRORS as exc:
                queue_failures += 1
                wait = backoff(self.s.base_interval, queue_failures, None, min(self.s.max_backoff, 30.0))
                self.bump(queue_errors=1)
                self.log("receive", "queue_error", attempt=queue_failures, wait_s=wait, detail=short_cause(exc))
                self.stop.wait(min(wait, max(0.0, self._retry_time() - time.monotonic())) if self.held else wait)
                continue
            queue_failures = 0
            messages = response.get("Messages", [])
            for message in messages:
                if self.stop.is_set():
                    break
                self.accept(message)
                self.cover_held()
            if messages:
                continue
            if not self.held:  # idle: nothing received, no retry held
                if time.monotonic() - self.last_probe >= self.s.probe_interval:
                    self.probe()
                continue
            delay = self._retry_time() - time.monotonic()
            if delay > 0:  # the last poll before a retry comes at least RETRY_POLL_S ahead of it
                self.stop.wait(delay if delay < 2 * RETRY_POLL_S else RETRY_POLL_S)
        left = len(self.held)
        self.held.clear()
        self.bump(retries_held=0)
        if self.s.report_url:
            self.flush_reports()  # the last outcomes, once (the reporter thread stops with the worker)
        self.write_metrics()
        self.log("stop", "ok", retries_left_to_sqs=left)
        return 0


def run(settings: Settings) -> int:
    connector = Connector(settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: connector.stop.set())
    return connector.run()
