"""Published intents to the connectors' SQS queues (the outbox's sender), queue metrics, requeue.

A publish (a promotion, a ring rollback) writes a ``dispatches`` row (state pending) in its own
transaction; after the commit the instance sends the intent to ``<prefix>-<platform>`` and marks
it enqueued. A send that failed (SQS down, instance killed) is retried by every instance's
dispatcher loop, which picks pending rows older than ``RESEND_AFTER_S`` with SKIP LOCKED. A
message may so be sent twice; the connector's idempotency key makes the platform apply it once
(the connector tests it first: Test-IdempotencyKey). A row is addressed by its idempotency key.

The message: {"intent_id" (a string), "idempotency_key", "correlation_id", "ring", "platform"};
a ring rollback's also has "action": "rollback" and "rollback_id", and its intent_id is the
platform's last intent deployed to that ring, or "ring:<ring>" when there was none.
"""

from __future__ import annotations

import asyncio
import json
import logging

import botocore.exceptions
import psycopg

from controlplane.queues import sqs_client
from controlplane.redact import short_cause

log = logging.getLogger("controlplane.dispatch")

SQS_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
RESEND_AFTER_S = 2.0
LOOP_INTERVAL_S = 1.0


class QueueUnavailable(Exception):
    """SQS did not answer or refused; str() is the short cause. ``missing``: the queue does not
    exist (SQS answered), so the other platforms' queues may still take their messages."""

    def __init__(self, cause: str, missing: bool = False) -> None:
        super().__init__(cause)
        self.missing = missing


MISSING_QUEUE_CODES = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue")


class Dispatcher:
    def __init__(self, sqs_endpoint: str, prefix: str) -> None:
        self.prefix = prefix
        self.sqs = sqs_client(sqs_endpoint, timeout=3.0)
        self.urls: dict[str, str] = {}

    async def _call(self, fn, **kwargs):
        try:
            return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(**kwargs))
        except SQS_ERRORS as exc:
            code = (
                exc.response.get("Error", {}).get("Code", "")
                if isinstance(exc, botocore.exceptions.ClientError)
                else ""
            )
            raise QueueUnavailable(short_cause(exc), missing=code in MISSING_QUEUE_CODES) from None

    async def url(self, name: str) -> str:
        if name not in self.urls:
            self.urls[name] = (await self._call(self.sqs.get_queue_url, QueueName=name))["QueueUrl"]
        return self.urls[name]

    @staticmethod
    def message(row: dict) -> str:
        body = {
            "intent_id": target(row.get("intent_id"), row["ring"]),
            "idempotency_key": row["idempotency_key"],
            "correlation_id": row["correlation_id"],
            "ring": row["ring"],
            "platform": row["platform"],
        }
        if row.get("kind") == "rollback":
            body.update(action="rollback", rollback_id=row.get("rollback_id"))
        return json.dumps(body)

    async def send(self, row: dict) -> None:
        url = await self.url(f"{self.prefix}-{row['platform']}")
        await self._call(self.sqs.send_message, QueueUrl=url, MessageBody=self.message(row))

    async def depth(self, platform: str) -> dict:
        """{queue_depth, in_flight, dead_letter_depth} of a platform's queues."""
        names = {"": f"{self.prefix}-{platform}", "dlq": f"{self.prefix}-{platform}-dlq"}
        out = {}
        for kind, name in names.items():
            attrs = (
                await self._call(
                    self.sqs.get_queue_attributes,
                    QueueUrl=await self.url(name),
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )
            )["Attributes"]
            visible = int(attrs.get("ApproximateNumberOfMessages", 0))
            hidden = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
            if kind == "dlq":
                out["dead_letter_depth"] = visible + hidden
            else:
                out.update(queue_depth=visible + hidden, in_flight=hidden)
        return out

    async def requeue(self, platform: str, limit: int = 100) -> list[dict]:
        """Move up to `limit` messages from the platform's dead-letter queue back to its queue
        (the runbook's requeue); returns the intents moved. Send first, then delete: a crash in
        between leaves a duplicate, never a loss."""
        dlq, queue = await self.url(f"{self.prefix}-{platform}-dlq"), await self.url(f"{self.prefix}-{platform}")
        moved: list[dict] = []
        while len(moved) < limit:
            got = await self._call(
                self.sqs.receive_message, QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
            )
            messages = got.get("Messages", [])
            if not messages:
                break
            for message in messages:
                await self._call(self.sqs.send_message, QueueUrl=queue, MessageBody=message["Body"])
                await self._call(self.sqs.delete_message, QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                try:
                    moved.append(json.loads(message["Body"]))
                except ValueError:
                    moved.append({"body": message["Body"][:200]})
        return moved


def target(intent_id, ring: str) -> str:
    """The intent_id a message carries: the intent's id, or "ring:<ring>" (a ring rollback on a
    platform that had no intent deployed to that ring)."""
    return str(intent_id) if intent_id is not None else f"ring:{ring}"


async def mark_enqueued(conn, key: str) -> None:
    await conn.execute(
        "UPDATE dispatches SET state = 'enqueued', enqueued_at = cp_now()"
        " WHERE idempotency_key = %s AND state = 'pending'",
        (key,),
    )


async def flush_pending(db, dispatcher: Dispatcher, older_than_s: float = RESEND_AFTER_S) -> int:
    """Send pending dispatches older than `older_than_s`; returns how many were enqueued."""

    async def work(conn: psycopg.AsyncConnection) -> int:
        cur = await conn.execute(
            "SELECT intent_id, platform, ring, idempotency_key, correlation_id, kind, rollback_id FROM dispatches"
            " WHERE state = 'pending' AND created_at < cp_now() - make_interval(secs => %s)"
            " ORDER BY created_at LIMIT 20 FOR UPDATE SKIP LOCKED",
            (older_than_s,),
        )
        cols = [c.name for c in cur.description or ()]  # a SELECT: always described
        sent = 0
        failed: set[str] = set()  # platforms without a queue: their other rows wait for the next round
        for values in await cur.fetchall():
            row = dict(zip(cols, values, strict=True))
            if row["platform"] in failed:
                continue
            try:
                await dispatcher.send(row)
            except QueueUnavailable as exc:
                log.warning("dispatch %s to %s still pending: %s", row["idempotency_key"], row["platform"], exc)
                if not exc.missing:  # SQS itself failed: the next round tries again
                    break
                failed.add(row["platform"])
                continue
            await mark_enqueued(conn, row["idempotency_key"])
            sent += 1
        return sent

    return await db.run(work)
