"""The lab's reads of its own stores (evidence the harness observes itself), against a real moto:
queue depth, dead letters read without consuming them, the latest version of an evidence object."""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest

from harness.lab.base import Lab
from harness.lab.capabilities import EvidenceStore, PlatformStandIns, Queues
from harness.lab.connectors import peek_messages, queue_depth
from harness.lab.embedded import EmbeddedLab
from harness.lab.moto import MotoServer
from harness.lab.parts import EVIDENCE_BUCKET, EVIDENCE_REPLICA_BUCKET, read_latest_object, store_client

pytestmark = pytest.mark.timeout(60)  # integration: tests/conftest.py, by folder


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with MotoServer(state_dir=tmp_path_factory.mktemp("drill-state")) as server:
        yield server


def client(moto, service: str):
    return boto3.client(
        service,
        endpoint_url=moto.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    )


@pytest.fixture
def queues(moto, request):
    sqs = client(moto, "sqs")
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    return sqs, queue, dlq


@pytest.fixture
def lab(moto, queues):
    """An EmbeddedLab that is not started: only its moto and its queue URLs are set."""
    _, queue, dlq = queues
    lab = EmbeddedLab()
    lab.moto, lab.store_url = moto, moto.endpoint_url
    lab.connectors = SimpleNamespace(queues={"jamf": {"queue_url": queue, "dlq_url": dlq}})
    return lab


def test_queue_depth_counts_visible_in_flight_and_delayed_messages(queues, lab):
    sqs, queue, _ = queues
    assert queue_depth(sqs, queue) == 0
    for i in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"i": i}))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"i": "later"}), DelaySeconds=60)
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=60)["Messages"]
    assert len(received) == 1  # now in flight: not visible, still in the queue
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (
        attributes["ApproximateNumberOfMessages"],
        attributes["ApproximateNumberOfMessagesNotVisible"],
        attributes["ApproximateNumberOfMessagesDelayed"],
    ) == ("2", "1", "1")
    assert queue_depth(sqs, queue) == 4
    assert lab.capability(Queues).queue_depth("jamf") == 4


def test_dead_letters_are_read_without_consuming_them(queues, lab):
    sqs, _, dlq = queues
    bodies = [{"intent_id": f"intent-{i}", "idempotency_key": f"key-{i}"} for i in range(7)]
    for body in bodies:
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    sqs.send_message(QueueUrl=dlq, MessageBody="not an intent")
    expected = sorted(
        [json.dumps(b, sort_keys=True) for b in bodies] + [json.dumps({"unparsed_body": "not an intent"})]
    )
    assert sorted(json.dumps(b, sort_keys=True) for b in peek_messages(sqs, dlq)) == expected
    assert (
        sorted(json.dumps(b, sort_keys=True) for b in lab.capability(Queues).dead_letters("jamf")) == expected
    )  # again
    attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "8",
        "0",
    )  # all still there, and visible to the runbook's requeue
    assert peek_messages(sqs, lab.connectors.queues["jamf"]["queue_url"]) == []


def test_read_object_reads_the_latest_version_of_each_region(moto, lab):
    s3 = client(moto, "s3")
    for bucket in (EVIDENCE_BUCKET, EVIDENCE_REPLICA_BUCKET):
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)  # versioned, as migrate makes them
    s3.put_object(Bucket=EVIDENCE_BUCKET, Key="packs/p1", Body=b"first")
    s3.put_object(Bucket=EVIDENCE_BUCKET, Key="packs/p1", Body=b"second")
    s3.put_object(Bucket=EVIDENCE_REPLICA_BUCKET, Key="packs/p1", Body=b"copy")
    s3.put_object(Bucket=EVIDENCE_BUCKET, Key="packs/gone", Body=b"x")
    s3.delete_object(Bucket=EVIDENCE_BUCKET, Key="packs/gone")  # a delete marker is the latest
    assert lab.capability(EvidenceStore).read_object("primary", "packs/p1") == b"second"
    assert lab.capability(EvidenceStore).read_object("alternate", "packs/p1") == b"copy"
    assert lab.capability(EvidenceStore).read_object("primary", "packs/never") is None
    assert lab.capability(EvidenceStore).read_object("alternate", "packs/gone") is None
    assert lab.capability(EvidenceStore).read_object("primary", "packs/gone") is None
    assert read_latest_object(store_client("s3", moto.endpoint_url), EVIDENCE_BUCKET, "packs/p1") == b"second"
    with pytest.raises(KeyError, match="known: primary, alternate"):
        lab.capability(EvidenceStore).read_object("mars", "packs/p1")


class _NoStores(Lab):
    provider = "external"

    def up(self):
        return self

    def down(self):
        pass

    def endpoints(self):
        return {}

    def processes(self):
        return {}

    def steady_state_checks(self):
        return {}

    def set_replication(self, mode):
        pass

    def parts(self):
        return ()  # none: no store to read


@pytest.mark.parametrize(
    "proto, capability",
    [
        (Queues, "queue depth"),
        (Queues, "dead-letter queue"),
        (EvidenceStore, "evidence_read"),
        (PlatformStandIns, "platform_requests"),
    ],
)
def test_other_providers_say_they_cannot_read_the_stores(proto, capability):
    """A lab without the part says which provider lacks which protocol, and what it would give."""
    with pytest.raises(NotImplementedError, match=f"the external lab lacks {proto.__name__}: .*{capability}"):
        _NoStores().capability(proto)
