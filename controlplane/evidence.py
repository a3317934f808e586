"""Evidence store on S3 (boto3): WORM buckets with Object Lock, puts with a retention date.

boto3 is blocking: the async methods run it in the loop's default thread executor and give
up after ``timeout`` seconds, raising ``EvidenceStoreUnavailable`` with a short cause.
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION.

Retry policy (spec failure-modes matrix, "Evidence store | Object storage outage"): every call
on the request path makes up to ``RetryPolicy.attempts`` attempts, waiting base x 2^k seconds
after the k-th failed one (0.2, 0.4, 0.8 by default). Connection errors, timeouts and HTTP 5xx
are retried, 4xx are not. botocore's own retries are off (one attempt per call), so this is
the only policy. Every attempt is recorded as {"at_ms", "error"} (at_ms counted from the start
of the first attempt) and the records travel with the ``EvidenceStoreUnavailable``.
Health checks (``ping``) make one short attempt and never retry.

Alternate region: an optional replica bucket behind its own endpoint. After a primary put the
object is written there too and read back; the copy counts as validated only when the bytes
read back have the recorded sha256 (``ValidatedCopyExists``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from controlplane.redact import short_cause

# Spec 1.3 and 3: evidence is WORM, kept >= 7 years. COMPLIANCE: no caller, privileged or not,
# can shorten or lift the lock before it expires (on a real S3). 7 years = 2557 days: 7 x 365 plus
# the at most 2 leap days any 7 years hold (7 x 365.25 = 2556.75, rounded up), so a retain-until
# 2557 days on is never short of 7 calendar years. moto (the lab's S3) does not enforce every
# COMPLIANCE rule (it lets a COMPLIANCE retention be shortened, for example): in the lab the
# drill proves the lock the store reports, not that the store would refuse to lift it.
LOCK_MODE = "COMPLIANCE"
SEVEN_YEARS_DAYS = 2557
DEFAULT_RETENTION_DAYS = SEVEN_YEARS_DAYS

S3_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class EvidenceStoreUnavailable(Exception):
    """S3 did not answer or refused; str() is the short cause.

    ``attempts``: the recorded attempts ({"at_ms", "error"}); ``retryable``: False when the
    last answer was one that is not retried (a 4xx, missing credentials, ...)."""

    def __init__(self, cause: str, attempts: list[dict] | None = None, retryable: bool = True) -> None:
        super().__init__(cause)
        self.attempts = attempts or []
        self.retryable = retryable


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; the wait after the k-th failed attempt (k from 0) is base x 2^k."""

    attempts: int = 4
    base: float = 0.2

    def delay(self, k: int) -> float:
        return self.base * 2**k


NO_RETRY = RetryPolicy(attempts=1, base=0.0)


def retryable(exc: BaseException) -> bool:
    """Connection errors, timeouts and HTTP 5xx are worth another attempt; 4xx and the rest not."""
    if isinstance(exc, asyncio.TimeoutError):
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500
    return isinstance(exc, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError))


def s3_client(endpoint_url: str, timeout: float = 2.0):
    """A boto3 S3 client with short timeouts and no retry of its own (``RetryPolicy`` retries)."""
    config = botocore.config.Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": "path"},
    )
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


def ensure_bucket(client, bucket: str, retention_days: int = DEFAULT_RETENTION_DAYS) -> str:
    """Create bucket with Object Lock (and so versioning) unless it exists, and set the default
    retention rule when it is missing or different. Idempotent: "created", "exists" or "updated"."""
    try:
        client.head_bucket(Bucket=bucket)
        outcome = "exists"
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        kwargs = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
        region = client.meta.region_name
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        client.create_bucket(**kwargs)
        outcome = "created"
    if client.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        outcome = "updated" if outcome == "exists" else outcome
    wanted = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": LOCK_MODE, "Days": retention_days}}}
    try:
        current = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except botocore.exceptions.ClientError:
        current = {}
    retention = current.get("Rule", {}).get("DefaultRetention", {})
    # Written only when it differs: moto refuses the call on a bucket that holds objects.
    if (
        current.get("ObjectLockEnabled") != "Enabled"
        or retention.get("Mode") != LOCK_MODE
        or retention.get("Days") != retention_days
    ):
        client.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=wanted)
        outcome = "updated" if outcome == "exists" else outcome
    return outcome


class EvidenceStore:
    """Puts evidence packs to one bucket under ``evidence/{intent_id}/{sha256}.json``, and a copy
    to the replica bucket (alternate region) when one is configured."""

    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        timeout: float = 2.0,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        retry: RetryPolicy = RetryPolicy(),
        replica_bucket: str | None = None,
        replica_endpoint_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.timeout = timeout
        self.retention_days = retention_days
        self.retry = retry
        self.client = s3_client(endpoint_url, timeout)
        self.replica_bucket = replica_bucket
        self.replica_client = s3_client(replica_endpoint_url or endpoint_url, timeout) if replica_bucket else None

    def _put_kwargs(self, key: str, body: bytes) -> dict:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.retention_days)
        return {
            "Key": key,
            "Body": body,
            "ContentType": "application/json",
            "ObjectLockMode": LOCK_MODE,
            "ObjectLockRetainUntilDate": until,
            "ChecksumAlgorithm": "SHA256",
        }

    async def put(self, intent_id: int, content: str) -> dict:
        """Store content with Object Lock retention: {"object_key", "sha256", "version_id", "body"}."""
        body = content.encode("utf-8")
        digest = hashlib.sha256(body).hexdigest()
        key = f"evidence/{intent_id}/{digest}.json"
        response = await self._retrying(
            functools.partial(self.client.put_object, Bucket=self.bucket, **self._put_kwargs(key, body))
        )
        return {"object_key": key, "sha256": digest, "version_id": response.get("VersionId"), "body": body}

    async def replicate(self, key: str, body: bytes, digest: str) -> dict:
        """Copy an object to the replica bucket and read it back: {"replica_bucket",
        "replica_version_id", "replica_validated", "replica_error"}. Never raises: a copy that
        fails leaves replica_validated False (the pack stays Committed on the primary)."""
        result: dict[str, Any] = {
            "replica_bucket": self.replica_bucket,
            "replica_version_id": None,
            "replica_validated": False,
            "replica_error": None,
        }
        if self.replica_client is None:
            result["replica_error"] = "no replica bucket configured"
            return result
        try:
            response = await self._retrying(
                functools.partial(
                    self.replica_client.put_object, Bucket=self.replica_bucket, **self._put_kwargs(key, body)
                )
            )
            result["replica_version_id"] = response.get("VersionId")
            await self.verify_replica(self.replica_bucket, key, result["replica_version_id"], digest)
            result["replica_validated"] = True
        except EvidenceStoreUnavailable as exc:
            result["replica_error"] = str(exc)
        return result

    async def check_object(self, key: str, version_id: str | None) -> None:
        """Raise EvidenceStoreUnavailable unless the primary store answers for this object version."""
        kwargs = {"VersionId": version_id} if version_id else {}
        await self._retrying(functools.partial(self.client.head_object, Bucket=self.bucket, Key=key, **kwargs))

    async def verify_replica(self, bucket: str | None, key: str, version_id: str | None, digest: str) -> None:
        """Read the replica object and compare its sha256 with digest; EvidenceStoreUnavailable
        (not retryable) when it differs, when it cannot be read or when no replica is configured."""
        if self.replica_client is None or not bucket:
            raise EvidenceStoreUnavailable("no replica bucket configured", retryable=False)
        kwargs = {"VersionId": version_id} if version_id else {}
        client = self.replica_client

        def read() -> bytes:
            return client.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()

        body = await self._retrying(read)
        if hashlib.sha256(body).hexdigest() != digest:
            raise EvidenceStoreUnavailable(
                f"replica copy of {key} does not match sha256 {digest[:12]}...", retryable=False
            )

    async def check(self) -> str:
        """Raise EvidenceStoreUnavailable unless the bucket answers; else a detail string (one attempt)."""
        await self._retrying(functools.partial(self.client.head_bucket, Bucket=self.bucket), NO_RETRY)
        return f"bucket {self.bucket} reachable"

    async def check_replica(self) -> str:
        """As check(), for the replica bucket through the replica endpoint (one attempt)."""
        if self.replica_client is None:
            raise EvidenceStoreUnavailable("no replica bucket configured", retryable=False)
        await self._retrying(functools.partial(self.replica_client.head_bucket, Bucket=self.replica_bucket), NO_RETRY)
        return f"replica bucket {self.replica_bucket} reachable"

    async def _retrying(self, fn, policy: RetryPolicy | None = None):
        """fn() under the retry policy; EvidenceStoreUnavailable carries every attempt."""
        policy = policy or self.retry
        attempts: list[dict] = []
        started = time.monotonic()
        for k in range(max(1, policy.attempts)):
            at_ms = round((time.monotonic() - started) * 1000)
            try:
                return await self._call(fn)
            except EvidenceStoreUnavailable as exc:
                attempts.append({"at_ms": at_ms, "error": str(exc)})
                if not exc.retryable or k + 1 >= policy.attempts:
                    raise EvidenceStoreUnavailable(str(exc), attempts, exc.retryable) from exc.__cause__
            await asyncio.sleep(policy.delay(k))

    async def _call(self, fn):
        """One attempt, bounded; failures as EvidenceStoreUnavailable with .retryable set."""
        loop = asyncio.get_running_loop()
        try:
            # The outer bound on an answer; botocore's own timeouts usually fire first.
            return await asyncio.wait_for(loop.run_in_executor(None, fn), timeout=2 * self.timeout + 1)
        except TimeoutError:
            raise EvidenceStoreUnavailable(f"no answer within {2 * self.timeout + 1:.1f} s") from None
        except S3_ERRORS as exc:
            # botocore's "(reached max retries: 0)" would mislead: RetryPolicy does the retrying.
            cause = short_cause(exc).replace(" (reached max retries: 0)", "")
            raise EvidenceStoreUnavailable(cause, retryable=retryable(exc)) from exc
