"""Connector queues on SQS: one intent queue per platform with a dead-letter queue and redrive.

``ensure_queues`` is idempotent: an existing queue keeps its URL and gets its attributes
(redrive policy, visibility timeout) set again, so a re-run converges instead of failing.
"""

from __future__ import annotations

import json
import os

import boto3
import botocore.config
import botocore.exceptions

from controlplane.platforms import PLATFORMS

DEFAULT_MAX_RECEIVE_COUNT = 5
DEFAULT_VISIBILITY_TIMEOUT = 30
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


def sqs_client(endpoint_url: str, timeout: float = 5.0):
    """A boto3 SQS client with short timeouts and no retry of its own (callers retry)."""
    config = botocore.config.Config(
        connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1, "mode": "standard"}
    )
    return boto3.client(
        "sqs", endpoint_url=endpoint_url, config=config, region_name=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )


def _ensure(client, name: str, attributes: dict[str, str]) -> str:
    try:
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if "NonExistentQueue" not in code and code != "QueueDoesNotExist":
            raise
        return client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def ensure_queues(
    client,
    prefix: str,
    platforms=PLATFORMS,
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
) -> dict[str, dict[str, str]]:
    """{platform: {"queue", "queue_url", "dlq", "dlq_url", "dlq_arn"}} for ``<prefix>-<platform>``."""
    out = {}
    for platform in platforms:
        name, dlq_name = f"{prefix}-{platform}", f"{prefix}-{platform}-dlq"
        dlq_url = _ensure(client, dlq_name, {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
        url = _ensure(client, name, {"RedrivePolicy": redrive, "VisibilityTimeout": str(visibility_timeout)})
        out[platform] = {"queue": name, "queue_url": url, "dlq": dlq_name, "dlq_url": dlq_url, "dlq_arn": dlq_arn}
    return out
