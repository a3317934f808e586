"""Evidence store on S3 (boto3): WORM buckets with Object Lock, puts with a retention date.

boto3 is blocking: the async methods run it in the loop's default thread executor and give
up after ``timeout`` seconds, raising ``EvidenceStoreUnavailable`` with a short cause.
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib

import boto3
import botocore.config
import botocore.exceptions

from controlplane.redact import short_cause

# GOVERNANCE can be lifted by a privileged caller; production evidence would use COMPLIANCE.
# moto does not enforce every COMPLIANCE rule (it lets a COMPLIANCE retention be shortened,
# for example), so the lab cannot prove more than GOVERNANCE does here.
LOCK_MODE = "GOVERNANCE"
DEFAULT_RETENTION_DAYS = 1

S3_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class EvidenceStoreUnavailable(Exception):
    """S3 did not answer or refused; str() is the short cause."""


def s3_client(endpoint_url: str, timeout: float = 2.0):
    """A boto3 S3 client with short timeouts and one retry (a down store must answer fast)."""
    config = botocore.config.Config(connect_timeout=timeout, read_timeout=timeout,
                                    retries={"total_max_attempts": 2, "mode": "standard"},
                                    s3={"addressing_style": "path"})
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
    wanted = {"ObjectLockEnabled": "Enabled",
              "Rule": {"DefaultRetention": {"Mode": LOCK_MODE, "Days": retention_days}}}
    try:
        current = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except botocore.exceptions.ClientError:
        current = {}
    retention = current.get("Rule", {}).get("DefaultRetention", {})
    # Written only when it differs: moto refuses the call on a bucket that holds objects.
    if (current.get("ObjectLockEnabled") != "Enabled" or retention.get("Mode") != LOCK_MODE
            or retention.get("Days") != retention_days):
        client.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=wanted)
        outcome = "updated" if outcome == "exists" else outcome
    return outcome


class EvidenceStore:
    """Puts evidence packs to one bucket under ``evidence/{intent_id}/{sha256}.json``."""

    def __init__(self, endpoint_url: str, bucket: str, timeout: float = 2.0,
                 retention_days: int = DEFAULT_RETENTION_DAYS) -> None:
        self.bucket = bucket
        self.timeout = timeout
        self.retention_days = retention_days
        self.client = s3_client(endpoint_url, timeout)

    async def put(self, intent_id: int, content: str) -> dict:
        """Store content with Object Lock retention: {"object_key", "sha256", "version_id"}."""
        body = content.encode("utf-8")
        digest = hashlib.sha256(body).hexdigest()
        key = f"evidence/{intent_id}/{digest}.json"
        until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=self.retention_days)
        response = await self._call(functools.partial(
            self.client.put_object, Bucket=self.bucket, Key=key, Body=body,
            ContentType="application/json", ObjectLockMode=LOCK_MODE, ObjectLockRetainUntilDate=until,
            ChecksumAlgorithm="SHA256"))
        return {"object_key": key, "sha256": digest, "version_id": response.get("VersionId")}

    async def check(self) -> str:
        """Raise EvidenceStoreUnavailable unless the bucket answers; else a detail string."""
        await self._call(functools.partial(self.client.head_bucket, Bucket=self.bucket))
        return f"bucket {self.bucket} reachable"

    async def _call(self, fn):
        loop = asyncio.get_running_loop()
        try:
            # The outer bound on an answer; botocore's own timeouts usually fire first.
            return await asyncio.wait_for(loop.run_in_executor(None, fn), timeout=2 * self.timeout + 1)
        except asyncio.TimeoutError:
            raise EvidenceStoreUnavailable(f"no answer within {2 * self.timeout + 1:.1f} s") from None
        except S3_ERRORS as exc:
            raise EvidenceStoreUnavailable(short_cause(exc)) from exc
