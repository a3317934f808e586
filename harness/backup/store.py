"""The backup buckets and their layout, over a boto3 S3 client.

Contract: ``BackupStore(s3, bucket="backups", dr_bucket="backups-dr", vault_bucket="keyvault")``;
``ensure()`` is idempotent and leaves every bucket versioned and with Object Lock enabled (no
default retention: each object version gets its own). In ``bucket`` only the event-store exports are
locked (COMPLIANCE, 7 years: inventory.py); its hourly snapshots carry no lock and are deleted after
7 days. ``locked_buckets`` (dr_bucket, vault_bucket) are those where every object is locked.

Layout::

    <bucket>/snapshots/<snapshot_id>/dump.enc        hourly snapshots (no Object Lock)
    <bucket>/snapshots/<snapshot_id>/manifest.json
    <dr_bucket>/snapshots/<snapshot_id>/...          cross-region exports, each version locked
    <bucket>/inventory/<YYYY-MM-DD>.json             daily inventory
    <bucket>/eventstore/<YYYY-MM-DD>.jsonl           daily event-store export (COMPLIANCE, 7 years)
    <vault_bucket>/keys/<name>                       the key vault stand-in (keyvault.py)

Helpers here do the S3 calls the other modules share: read the latest version of an object
(None when there is none), list keys and versions under a prefix, and delete every version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions

INVENTORY_PREFIX = "inventory/"
EVENTSTORE_PREFIX = "eventstore/"
_MISSING = ("NoSuchKey", "404", "NoSuchVersion", "NotFound")


def inventory_key(day: str) -> str:
    return f"{INVENTORY_PREFIX}{day}.json"


def eventstore_key(day: str) -> str:
    return f"{EVENTSTORE_PREFIX}{day}.jsonl"


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_missing(exc: BaseException) -> bool:
    return error_code(exc) in _MISSING


def lock_until(when: float) -> dt.datetime:
    """An Object Lock retain-until date for an epoch: whole seconds, UTC (rounded up)."""
    return dt.datetime.fromtimestamp(int(-(-when // 1)), tz=dt.UTC)


@dataclass
class Version:
    key: str
    version_id: str
    size: int | None
    etag: str | None
    last_modified: dt.datetime | None
    is_latest: bool
    delete_marker: bool


class BackupStore:
    """The backup service's buckets on one S3 endpoint (see the module docstring)."""

    def __init__(
        self, s3, bucket: str = "backups", dr_bucket: str = "backups-dr", vault_bucket: str = "keyvault"
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.dr_bucket = dr_bucket
        self.vault_bucket = vault_bucket

    @property
    def locked_buckets(self) -> tuple[str, ...]:
        return (self.dr_bucket, self.vault_bucket)

    def ensure(self) -> BackupStore:
        """Create the buckets that are missing; versioning everywhere, Object Lock on the locked
        ones (enabled on an existing versioned bucket too). Safe to call again."""
        for name in (self.bucket, self.dr_bucket, self.vault_bucket):
            locked = name in self.locked_buckets or name == self.bucket  # bucket: the event-store exports
            if not self._exists(name):
                try:
                    kwargs: dict[str, Any] = {"Bucket": name}
                    if locked:
                        kwargs["ObjectLockEnabledForBucket"] = True
                    self.s3.create_bucket(**kwargs)
                except botocore.exceptions.ClientError as exc:
                    if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            status = self.s3.get_bucket_versioning(Bucket=name).get("Status")
            if status != "Enabled":
                self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            if locked and not self.lock_enabled(name):
                self.s3.put_object_lock_configuration(
                    Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}
                )
        return self

    def _exists(self, name: str) -> bool:
        try:
            self.s3.head_bucket(Bucket=name)
            return True
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise

    def lock_enabled(self, name: str) -> bool:
        try:
            conf = self.s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "ObjectLockConfigurationNotFoundError":
                return False
            raise
        return conf.get("ObjectLockEnabled") == "Enabled"

    # ---- reads -------------------------------------------------------------------------

    def read(self, bucket: str, key: str) -> bytes | None:
        """The latest version's bytes, or None when the key has none (or a delete marker)."""
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if is_missing(exc):
                return None
            raise

    def download(self, bucket: str, key: str, path: Path) -> bool:
        """Write the latest version of key to path; False when it has none."""
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if is_missing(exc):
                return False
            raise
        with open(path, "wb") as f:
            for chunk in response["Body"].iter_chunks(1 << 20):
                f.write(chunk)
        return True

    def keys(self, bucket: str, prefix: str) -> Iterator[str]:
        """Keys (latest versions that are not delete markers) under prefix, in key order."""
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def versions(self, bucket: str, prefix: str = "") -> list[Version]:
        """Every version and delete marker under prefix."""
        found: list[Version] = []
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Versions", []):
                found.append(
                    Version(
                        item["Key"],
                        str(item.get("VersionId")),
                        item.get("Size"),
                        (item.get("ETag") or "").strip('"') or None,
                        item.get("LastModified"),
                        bool(item.get("IsLatest")),
                        False,
                    )
                )
            for item in page.get("DeleteMarkers", []):
                found.append(
                    Version(
                        item["Key"],
                        str(item.get("VersionId")),
                        None,
                        None,
                        item.get("LastModified"),
                        bool(item.get("IsLatest")),
                        True,
                    )
                )
        return found

    def retain_until(self, bucket: str, key: str, version_id: str) -> dt.datetime | None:
        """The Object Lock retain-until date of one version (from its HEAD: moto answers
        GetObjectRetention with a body botocore cannot parse), None when it has none."""
        head = self.s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
        return head.get("ObjectLockRetainUntilDate")

    # ---- deletes -----------------------------------------------------------------------

    def delete_versions(self, bucket: str, versions: list[Version]) -> None:
        """Delete each given version for good (the store refuses a locked one: ClientError)."""
        for v in versions:
            self.s3.delete_object(Bucket=bucket, Key=v.key, VersionId=v.version_id)
