"""HTTP client of the Control Plane API, mapping each reply to ok / fail / info."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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
    for needle, words in (("Connection refused", "connection refused"),
                          ("RemoteDisconnected", "connection closed before an answer"),
                          ("Connection aborted", "connection closed before an answer"),
                          ("Connection reset", "connection reset"),
                          ("Name or service not known", "host name not found")):
        if needle in text:
            return f"{type(exc).__name__}: {words}"
    return one_line(f"{type(exc).__name__}: {text}")


# Fields of an answer that gates read (what was refused by which gate, for what cause, ...).
DETAIL_FIELDS = ("error", "cause", "gate", "Impact", "ServiceHealth", "evidence_source", "ValidatedCopyExists",
                 "state", "outcome", "instance", "idempotency_key", "intent_id", "ring", "requeued", "sha256",
                 "object_key")


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

    def call(self, method: str, path: str, correlation_id: str | None = None,
             headers: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        headers = dict(headers or {})
        headers["X-Correlation-Id"] = correlation_id or str(uuid.uuid4())
        try:
            response = self.session.request(method, self.base_url + path, headers=headers,
                                            timeout=self.timeout, **kwargs)
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

    # -- the operations drills use -----------------------------------------------------
    def create_intent(self, key: str, correlation_id: str, ring: str = "ring0",
                      platform: str = "intune") -> Reply:
        return self.call("POST", "/intents", correlation_id, headers={"Idempotency-Key": key},
                         json={"ring": ring, "platform": platform, "payload": {"key": key}})

    def health(self) -> Reply:
        """ok only when ServiceHealth = Healthy; an answer saying otherwise is a definite fail."""
        reply = self.call("GET", "/health")
        said = reply.body.get("ServiceHealth") if isinstance(reply.body, dict) else None
        if said is not None and said != "Healthy":
            return Reply(Outcome.FAIL, reply.status, reply.body, f"ServiceHealth = {said}")
        return reply
