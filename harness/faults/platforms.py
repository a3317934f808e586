"""Faults of the platform APIs behind the connectors (matrix rows 4-6), through the lab.

``platform_degrade`` sets a platform API's mode (429 with Retry-After, 503, hang) for every
request or the next ``requests``, through the lab's PlatformStandIns part (set_platform_mode: a
stand-in's control endpoint, or an external target's runbook hook); ``platform_down``
SIGKILLs the platform's server and its heal starts it again on the same port.
"""

from __future__ import annotations

import requests

from ..lab.capabilities import PlatformStandIns
from .base import Fault, FaultContext, Param, register
from .refused import may_have_acted


@register
class PlatformDegrade(Fault):
    TYPE = "platform_degrade"
    NEEDS = frozenset({"platform_api_faults"})
    TIME_LIMITED = True  # the stand-in goes back to ok by itself (for_s)
    DESCRIPTION = (
        "the platform API answers `mode` (throttle: 429 with Retry-After, error: 503, hang) "
        "to every request (requests 0) or the next `requests`"
    )
    PARAMS = {
        "mode": Param(str, "throttle", choices=("throttle", "error", "hang")),
        "retry_after": Param((int, float), 1.0, minimum=0, doc="seconds, for throttle"),
        "requests": Param(int, 0, minimum=0),
    }

    def _control(self, ctx: FaultContext, body: dict[str, object]) -> None:
        # its stand-in's control endpoint, or an external target's runbook hook
        self.uses(ctx, PlatformStandIns).set_platform_mode(self.spec.target, body)

    refused = False  # the target certainly did not take the mode: nothing to undo

    def inject(self, ctx: FaultContext) -> None:
        body = {
            "mode": self.params["mode"],
            "retry_after": self.params["retry_after"],
            "requests": self.params["requests"],
        }
        if self.spec.time_limit_s is not None:  # the stand-in goes back to ok by itself after it
            body["for_s"] = self.spec.time_limit_s
        try:
            self._control(ctx, body)
        except Exception as exc:
            self.refused = not may_have_acted(exc)
            raise

    def heal(self, ctx: FaultContext) -> None:
        if self.refused:
            return
        try:
            self._control(ctx, {"mode": "ok"})
        except requests.ConnectionError:  # the server is down (another fault): nothing to undo here
            pass


@register
class PlatformDown(Fault):
    TYPE = "platform_down"
    NEEDS = frozenset({"platform_kill"})
    DESCRIPTION = "the platform's server is killed (SIGKILL); heal starts it again"

    refused = False  # the kill was certainly not done: nothing to start again

    def inject(self, ctx: FaultContext) -> None:
        try:
            self.uses(ctx, PlatformStandIns).kill_platform(self.spec.target)
        except Exception as exc:
            self.refused = not may_have_acted(exc)
            raise

    def heal(self, ctx: FaultContext) -> None:
        if not self.refused:
            self.uses(ctx, PlatformStandIns).restart_platform(self.spec.target)
