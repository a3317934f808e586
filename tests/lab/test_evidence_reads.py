"""The evidence store's reads (harness.lab.parts.EvidenceReads) against a real moto server: the
Object Lock of every evidence object is read through one S3 client, not a client per object (a
client costs about 0.25 s to make, a HEAD through it about 5 ms: the drill HEADs every object)."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

from harness.lab import parts
from harness.lab.moto import MotoServer
from harness.lab.parts import EVIDENCE_BUCKET, EVIDENCE_REPLICA_BUCKET, EvidenceReads, store_client


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with MotoServer(state_dir=tmp_path_factory.mktemp("drill-state")) as server:
        yield server


def test_object_locks_of_many_objects_are_read_through_one_client(moto, monkeypatch):
    s3 = store_client("s3", moto.endpoint_url)
    until = datetime.datetime(2034, 1, 1, tzinfo=datetime.UTC)
    for bucket in (EVIDENCE_BUCKET, EVIDENCE_REPLICA_BUCKET):
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    keys = [f"pack-{n}" for n in range(4)]
    for key in keys:
        s3.put_object(
            Bucket=EVIDENCE_BUCKET, Key=key, Body=b"pack", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until
        )
    made = []

    def counting_client(service, endpoint_url):
        made.append((service, endpoint_url))
        return store_client(service, endpoint_url)

    monkeypatch.setattr(parts, "store_client", counting_client)
    reads = EvidenceReads(SimpleNamespace(store_url=moto.endpoint_url))
    primary = [reads.object_lock("primary", key) for key in keys]
    alternate = [reads.object_lock("alternate", key) for key in keys]

    assert [lock["mode"] for lock in primary] == ["COMPLIANCE"] * len(keys)
    assert {lock["retain_until"] for lock in primary} == {until.timestamp()}
    assert alternate == [None] * len(keys)  # no copy there: nothing to judge
    assert made == [("s3", moto.endpoint_url)]
