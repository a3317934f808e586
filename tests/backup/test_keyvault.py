"""The key vault stand-in against moto: soft-delete and recover give the same key back (and the
restore works again), a soft-deleted key is unusable, purge of a locked version is refused by
the store, rotation keeps older snapshots restorable."""

from __future__ import annotations

import pytest

from harness.backup import KeyDeleted, KeyMissing, KeyVault, PurgeRefused, restore, take_snapshot
from tests.backup.conftest import PG_BIN, Events, admin_dsn, counts, restore_into_database, seed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_soft_delete_then_recover_gives_the_same_key_and_the_restore_works_again(pg, db, store, vault):
    version = vault.ensure_key()
    key = vault.key()
    assert len(key) == 32 and vault.ensure_key() == version  # created once
    manifest = take_snapshot(db.dsn, PG_BIN, store, vault)
    assert manifest.encryption["key_version"] == version

    marker = vault.soft_delete()
    assert marker != version and vault.is_deleted()
    with pytest.raises(KeyDeleted):
        vault.key()
    with pytest.raises(KeyDeleted):
        vault.ensure_key()  # no new key over a soft-deleted one
    events = Events()
    rehydrate, restored = restore_into_database(pg)
    outcome = restore(store, vault, rehydrate, emit=events)
    assert not outcome.ok and restored == []
    assert [(c.phase, "soft-deleted" in c.reason) for c in outcome.candidates] == [("decrypt", True)]
    assert events.kinds() == ["restore_download", "restore_verify", "restore_refused", "restore_failed"]

    assert vault.recover() == version
    assert not vault.is_deleted() and vault.key() == key
    outcome = restore(store, vault, rehydrate)
    assert outcome.manifest == manifest and outcome.key_version == version
    assert counts(admin_dsn(pg, restored[0])) == manifest.tables


def test_purge_of_a_locked_key_version_is_refused_by_the_store(store, vault):
    version = vault.ensure_key(retention_days=90)
    key = vault.key()
    with pytest.raises(PurgeRefused, match="refused the purge"):
        vault.purge(version)
    vault.soft_delete()
    with pytest.raises(PurgeRefused):
        vault.purge(version)  # soft-deleted or not, the version stays
    vault.recover()
    assert vault.key(version) == key

    # the same purge of a version whose retention has passed goes through: the lock refused it
    short = KeyVault(store.s3, store.vault_bucket, name="short-lived")
    expired = short.ensure_key(retention_days=-1)
    short.purge(expired)
    with pytest.raises(KeyMissing):
        short.key()


def test_a_rotated_key_keeps_older_snapshots_restorable(pg, db, store, vault):
    first = take_snapshot(db.dsn, PG_BIN, store, vault)
    rotated = vault.rotate()
    seed(db.dsn, 1, 0, tag="after-rotation")
    second = take_snapshot(db.dsn, PG_BIN, store, vault)
    assert first.encryption["key_version"] != rotated == second.encryption["key_version"]
    assert vault.key(first.encryption["key_version"]) != vault.key()

    store.s3.delete_object(Bucket=store.bucket, Key=second.object("dump.enc").key)  # newest unusable
    rehydrate, restored = restore_into_database(pg)
    outcome = restore(store, vault, rehydrate)
    assert outcome.manifest == first and outcome.key_version == first.encryption["key_version"]
    assert counts(admin_dsn(pg, restored[0])) == first.tables
