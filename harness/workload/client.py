"""HTTP client of the Control Plane API, mapping each reply to ok / fail / info."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from ..model import Outcome
from ..text import one_line


def transport_error(exc: requests.RequestException, timeout: float) -> str:
    """A request that got no HTTP answer, in plain words (not the driver's nested repr)."""
    text = str(exc)
    if isinstance(exc, requests.ConnectTimeout):
        return f"ConnectTimeout: no connection within {timeout:g} s"
    if isinstance(exc, requests.ReadTimeout):
        return f"ReadTimeout: no answer within {timeout:g} s"
    for needle, words in (
        ("Connection refused", "connection refused"),
        ("RemoteDisconnected", "connection closed before an answer"),
        ("Connection aborted", "connection closed before an answer"),
        ("Connection reset", "connection reset"),
        ("Name or service not known", "host name not found"),
    ):
        if needle in text:
            return f"{type(exc).__name__}: {words}"
    return one_line(f"{type(exc).__name__}: {text}")


# Fields of an answer that gates read (what was refused by which gate, for what cause, ...).
DETAIL_FIELDS = (
    "error",
    "cause",
    "gate",
    "Impact",
    "ServiceHealth",
    "evidence_source",
    "ValidatedCopyExists",
    "state",
    "outcome",
    "instance",
    "idempotency_key",
    "intent_id",
    "ring",
    "requeued",
    "sha256",
    "object_key",
)


@dataclass(frozen=True)
class Reply:
    outcome: Outcome
    status: int | None
    body: Any
    error: str = ""

    @property
    def detail(self) -> dict[str, Any]:
        """The answer's fields a gate reads; components of a health answer as {part: status}."""
        if not isinstance(self.body, dict):
            return {}
        detail = {k: self.body[k] for k in DETAIL_FIELDS if k in self.body}
        if isinstance(self.body.get("attempts"), list):
            detail["attempts"] = len(self.body["attempts"])
        components = self.body.get("components")
        if isinstance(components, dict):
            detail["components"] = {k: v.get("status") for k, v in components.items() if isinstance(v, dict)}
        return detail


APPROVER = "drill-cab"  # who approves and lifts a CAB pause in a drill


@dataclass(frozen=True)
class Request:
    """One request of the Control Plane's API, as an operation of ControlPlane sends it: method, path,
    JSON body (None: no body; {} is an empty JSON body), query and headers (the correlation id is
    added when it is sent)."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """The requests.request keyword arguments beside method, URL and headers."""
        options: dict[str, Any] = {}
        if self.json is not None:
            options["json"] = self.json
        if self.params is not None:
            options["params"] = dict(self.params)
        return options


class ControlPlane:
    """The Control Plane's operations, each mapped to its request: the one place a path, a body or
    an Idempotency-Key header of the API is written (the runner's steps, the workload and the
    validation all send these; ApiClient.send and Scenario.call send and record them)."""

    @staticmethod
    def create_intent(key: str, ring: str = "ring0", platform: str = "intune") -> Request:
        """A deployment intent whose payload carries its idempotency key."""
        return Request(
            "POST",
            "/intents",
            {"ring": ring, "platform": platform, "payload": {"key": key}},
            headers={"Idempotency-Key": key},
        )

    @staticmethod
    def evidence(intent_id: object, content: str) -> Request:
        return Request("POST", f"/intents/{intent_id}/evidence", {"content": content})

    @staticmethod
    def approve(intent_id: object, approver: str = APPROVER) -> Request:
        return Request("POST", f"/intents/{intent_id}/approve", {"approver": approver})

    @staticmethod
    def publish(intent_id: object) -> Request:
        return Request("POST", f"/intents/{intent_id}/publish", {})

    @staticmethod
    def promote(intent_id: object, to_ring: str) -> Request:
        return Request("POST", f"/intents/{intent_id}/promote", {"to_ring": to_ring})

    @staticmethod
    def read_intent(intent_id: object) -> Request:
        return Request("GET", f"/intents/{intent_id}")

    @staticmethod
    def intents(key_prefix: str) -> Request:
        """The intents whose idempotency key starts with `key_prefix`."""
        return Request("GET", "/intents", params={"key_prefix": key_prefix})

    @staticmethod
    def health() -> Request:
        return Request("GET", "/health")

    @staticmethod
    def live() -> Request:
        """An instance's own liveness (what the load balancer probes, and a lab waits for)."""
        return Request("GET", "/health/live")

    @staticmethod
    def events(**params: Any) -> Request:
        """A page of the event store (after, limit, type, correlation_id)."""
        return Request("GET", "/events", params=params)

    @staticmethod
    def operational_event(body: Mapping[str, Any]) -> Request:
        return Request("POST", "/events/operational", body)

    @staticmethod
    def platforms() -> Request:
        return Request("GET", "/platforms")

    @staticmethod
    def platform(name: str) -> Request:
        return Request("GET", f"/platforms/{name}")

    @staticmethod
    def lift_pause(platform: str, approver: str = APPROVER) -> Request:
        """The CAB lifts a platform's manual pause."""
        return Request("POST", f"/platforms/{platform}/resume", {"approver": approver})

    @staticmethod
    def requeue(platform: str, operator: str = "drill-runbook") -> Request:
        """The runbook requeues a platform's dead letters."""
        return Request("POST", f"/platforms/{platform}/requeue", {"operator": operator})

    @staticmethod
    def queue_metrics() -> Request:
        return Request("GET", "/metrics/queues")

    @staticmethod
    def ring_rollback(ring: str, key: str, approver: str = APPROVER) -> Request:
        return Request("POST", f"/rings/{ring}/rollback", {"approver": approver}, headers={"Idempotency-Key": key})

    @staticmethod
    def advance_clock(seconds: float, headers: Mapping[str, str]) -> Request:
        """Move the Control Plane's clock (a lab's control headers allow it)."""
        return Request("POST", "/_clock/advance", {"seconds": seconds}, headers=headers)


class ApiClient:
    """One session against the API's base URL (the load balancer).

    Outcome rules (Jepsen's): 2xx is ok; a 4xx or a 503 that names its cause is a definite
    failure (the API rolls back); a timeout, a dropped connection, a 502/504 or an unexpected
    5xx is indeterminate (info): the write may or may not have taken effect.

    A 503 is definite only because one request reaches at most one instance: the load balancer
    retries a connection the request never went out on, never a request an instance received
    (harness.lab.haproxy; such a request answers 502). A balancer that re-sent it could answer
    one instance's refusal for another's commit.
    """

    def __init__(self, base_url: str, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def call(
        self,
        method: str,
        path: str,
        correlation_id: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        headers = dict(headers or {})
        headers["X-Correlation-Id"] = correlation_id or str(uuid.uuid4())
        try:
            response = self.session.request(
                method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            return Reply(Outcome.INFO, None, None, transport_error(exc, self.timeout))
        try:
            body = response.json()
        except ValueError:
            body = response.text[:300]
        status = response.status_code
        if 200 <= status < 300:
            return Reply(Outcome.OK, status, body)
        error = body.get("error", "") if isinstance(body, dict) else str(body)
        definite = status < 500 or (status == 503 and isinstance(body, dict) and body.get("cause"))
        return Reply(Outcome.FAIL if definite else Outcome.INFO, status, body, one_line(f"{status} {error}"))

    def send(self, request: Request, correlation_id: str | None = None) -> Reply:
        """One operation's request (ControlPlane), under `correlation_id` (a fresh one if None)."""
        return self.call(
            request.method, request.path, correlation_id, headers=dict(request.headers), **request.options()
        )

    # -- the operations drills use -----------------------------------------------------
    def create_intent(self, key: str, correlation_id: str, ring: str = "ring0", platform: str = "intune") -> Reply:
        return self.send(ControlPlane.create_intent(key, ring, platform), correlation_id)

    def live(self) -> bool:
        """The instance at base_url answers its /health/live with 200 (no answer: False)."""
        return self.send(ControlPlane.live()).status == 200

    def health(self) -> Reply:
        """ok only when ServiceHealth = Healthy; an answer saying otherwise is a definite fail."""
        reply = self.send(ControlPlane.health())
        said = reply.body.get("ServiceHealth") if isinstance(reply.body, dict) else None
        if said is not None and said != "Healthy":
            return Reply(Outcome.FAIL, reply.status, reply.body, f"ServiceHealth = {said}")
        return reply
