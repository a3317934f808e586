"""A STAND-IN for a real key vault (Azure Key Vault's soft-delete and purge protection), on S3.

This is not a key vault: the key's bytes are readable by anyone who may read the bucket, and
nothing here is an HSM. It models, with the lab's object store, the two properties spec section
3 asks of key material ("recoverable via soft-delete and purge protection"):

- the key is the object ``keys/<name>`` of a versioned bucket with Object Lock; each S3 version
  is a key version (``ensure_key`` makes the first: 32 random bytes, created once; ``rotate``
  adds one);
- soft-delete: ``soft_delete()`` is a DELETE without a version id, which only adds a delete
  marker; ``key()`` (no version) then raises KeyDeleted, ``is_deleted()`` is True, and
  ``ensure_key`` refuses to create a new key over it (as Key Vault refuses a name in use by a
  soft-deleted key); ``recover()`` removes the marker and the same key is back;
- purge protection: every key version carries an Object Lock retention (``retention_days``,
  COMPLIANCE mode), so ``purge(version)`` (a DELETE of that version) is refused by the store
  itself while it holds: PurgeRefused.

moto, which plays S3 in the lab, enforces Object Lock on deletes of a version but not every
COMPLIANCE rule: for instance it lets a retention be shortened or removed, which real S3 refuses
in COMPLIANCE mode. What the lab proves is therefore GOVERNANCE-level protection (a plain
delete of a locked version is refused), not that nobody can ever shorten the lock.

``key(version)`` with an explicit version reads that version even while the key is soft-deleted
(S3 allows it); a caller that must honour soft-delete (the restore does) checks ``is_deleted()``.
The bucket is created by ``BackupStore.ensure()``.
"""

from __future__ import annotations

import os
import time

import botocore.exceptions

from harness.backup.store import error_code, is_missing, lock_until

KEY_BYTES = 32
LOCK_MODE = "COMPLIANCE"


class KeyVaultError(Exception):
    """Base of the key vault's refusals."""


class KeyDeleted(KeyVaultError):
    """The key is soft-deleted: recover() it first."""


class KeyMissing(KeyVaultError):
    """No such key (or version) was ever created."""


class PurgeRefused(KeyVaultError):
    """The store refused to delete a key version: its retention (purge protection) holds."""


class KeyVault:
    """One named key in a locked, versioned bucket (see the module docstring)."""

    def __init__(self, s3, bucket: str, name: str = "backup-key") -> None:
        self.s3 = s3
        self.bucket = bucket
        self.name = name

    @property
    def object_key(self) -> str:
        return f"keys/{self.name}"

    def _history(self) -> list[dict]:
        """Versions and delete markers of the key, newest first, each with "marker": bool."""
        response = self.s3.list_object_versions(Bucket=self.bucket, Prefix=self.object_key)
        items = [{**v, "marker": False} for v in response.get("Versions", []) if v["Key"] == self.object_key]
        items += [{**m, "marker": True} for m in response.get("DeleteMarkers", []) if m["Key"] == self.object_key]
        items.sort(key=lambda i: (not i.get("IsLatest"), -i["LastModified"].timestamp()))
        return items

    def is_deleted(self) -> bool:
        history = self._history()
        return bool(history) and history[0]["marker"]

    def current_version(self) -> str | None:
        """The current key version, None when there is none or the key is soft-deleted."""
        history = self._history()
        return None if not history or history[0]["marker"] else str(history[0]["VersionId"])

    def ensure_key(self, retention_days: float = 90) -> str:
        """The current key version, creating the key (once) when it has never existed."""
        history = self._history()
        if history and history[0]["marker"]:
            raise KeyDeleted(f"key {self.name!r} is soft-deleted: recover it instead of creating it again")
        if history:
            return str(history[0]["VersionId"])
        return self._put(retention_days)

    def rotate(self, retention_days: float = 90) -> str:
        """A new key version (older versions stay readable, and locked, for older snapshots)."""
        if self.is_deleted():
            raise KeyDeleted(f"key {self.name!r} is soft-deleted: recover it before rotating")
        return self._put(retention_days)

    def _put(self, retention_days: float) -> str:
        response = self.s3.put_object(
            Bucket=self.bucket,
            Key=self.object_key,
            Body=os.urandom(KEY_BYTES),
            ObjectLockMode=LOCK_MODE,
            ObjectLockRetainUntilDate=lock_until(time.time() + retention_days * 86400),
        )
        return str(response["VersionId"])

    def key(self, version: str | None = None) -> bytes:
        """The key's bytes: the current version, or the given one."""
        try:
            if version is None:
                if self.is_deleted():
                    raise KeyDeleted(f"key {self.name!r} is soft-deleted")
                body = self.s3.get_object(Bucket=self.bucket, Key=self.object_key)["Body"].read()
            else:
                body = self.s3.get_object(Bucket=self.bucket, Key=self.object_key, VersionId=version)["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if is_missing(exc) or error_code(exc) in ("InvalidArgument", "400"):
                raise KeyMissing(
                    f"key {self.name!r}" + (f" version {version}" if version else "") + " does not exist"
                ) from None
            raise
        if len(body) != KEY_BYTES:
            raise KeyVaultError(
                f"key {self.name!r} version {version or 'current'} is {len(body)} bytes, not {KEY_BYTES}"
            )
        return body

    def soft_delete(self) -> str:
        """Soft-delete the key: a delete marker; answers the marker's version id."""
        if self.current_version() is None:
            raise KeyMissing(f"key {self.name!r} has no current version to delete")
        return str(self.s3.delete_object(Bucket=self.bucket, Key=self.object_key)["VersionId"])

    def recover(self) -> str:
        """Undo soft-delete (remove the delete markers on top); answers the current key version."""
        history = self._history()
        while history and history[0]["marker"]:
            self.s3.delete_object(Bucket=self.bucket, Key=self.object_key, VersionId=history[0]["VersionId"])
            history = self._history()
        if not history:
            raise KeyMissing(f"key {self.name!r} has no version to recover")
        return str(history[0]["VersionId"])

    def purge(self, version: str) -> None:
        """Delete a key version for good; PurgeRefused while its retention holds."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.object_key, VersionId=version)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ("AccessDenied", "InvalidRequest"):
                raise PurgeRefused(
                    f"key {self.name!r} version {version}: the store refused the purge "
                    f"({error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')})"
                ) from None
            raise
