"""A fault the harness could not inject: the typed "could not act" outcome.

A runbook hook that answers 401, a hook URL that is not there, a target or fault server that
cannot be reached: the fault never happened, so nothing is known about the deployment. The
journal turns such an error into FaultNotInjected (cause and exit code); the scenario that hit
it is recorded as not run (its error says why, no gate is judged and no figure is measured), the
run as `not_run` with the cause, and the command exits 2 (the plan's credentials, keys or hook
URLs: fix the plan) or 4 (the target or a hook could not be reached, or refused the action). A
CAB line of such a run has verdict `not_run`: never a pass or a fail of an HA domain.
"""

from __future__ import annotations

from collections.abc import Iterable

import requests

from .. import exits
from ..errors import LabStartError
from ..lab import hooks
from .base import FaultError

# what a HookError's kind exits with: the plan is wrong (2), or the target could not be driven (4)
HOOK_EXITS = {
    hooks.CREDENTIALS: exits.INVALID,
    hooks.PLAN: exits.INVALID,
    hooks.UNREACHABLE: exits.UNREACHABLE,
    hooks.REFUSED: exits.UNREACHABLE,
}


class FaultNotInjected(RuntimeError):
    """The fault labelled `label` could not be injected: `cause` says why (secret-free), `exit_code`
    is exits.INVALID or exits.UNREACHABLE, `acted` says whether the target may have acted anyway
    (a timeout, a 5xx: the heal was still tried)."""

    def __init__(self, label: str, cause: str, exit_code: int, acted: bool = False):
        super().__init__(f"fault {label} not injected: {cause}")
        self.label, self.cause, self.exit_code, self.acted = label, cause, exit_code, acted


def could_not_act(exc: BaseException) -> tuple[int, bool] | None:
    """(exit code, whether it may have acted) when `exc` says the harness could not act on the
    target (a hook, the fault server, a target part that refused it or cannot be reached); None
    for anything else (a bug stays a bug, a step error stays one)."""
    if isinstance(exc, hooks.HookError):
        return HOOK_EXITS.get(exc.kind, exits.UNREACHABLE), exc.acted
    if isinstance(exc, FaultError):  # e.g. the plan names no such proxy or instance
        return exits.INVALID, False
    if isinstance(exc, LabStartError):  # no database node answers, a secret not set
        return exits.UNREACHABLE, False
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in (401, 403):
            return exits.INVALID, False
        return exits.UNREACHABLE, status >= 500
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return exits.UNREACHABLE, not isinstance(exc, requests.ConnectTimeout)
    return None


def worst_exit(codes: Iterable[int]) -> int:
    """The exit code of a run with several causes: a plan to fix (2) before a target to reach (4)."""
    codes = set(codes)
    return exits.INVALID if exits.INVALID in codes or not codes else exits.UNREACHABLE


def may_have_acted(exc: BaseException) -> bool:
    """False only when `exc` says the target certainly did nothing (a hook answered 401, or was
    never reached): a fault's heal then has nothing of that call to undo."""
    refused = could_not_act(exc)
    return True if refused is None else refused[1]
