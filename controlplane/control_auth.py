"""The bearer token of a lab's control endpoints (clock control, platform stand-in controls, the
HTTP fault gateway's controls): loopback is reachable by every local user, so each control call
must carry ``Authorization: Bearer <token>``.

The process gets the token in its environment (DRILL_CONTROL_TOKEN), never on its command line
(where `ps` shows it). Without one, the controls refuse every call (401): fail closed.
"""

from __future__ import annotations

import hmac
import os

CONTROL_TOKEN_ENV = "DRILL_CONTROL_TOKEN"


def control_token() -> str:
    """This process's control token ('' when none was given: every control call is refused)."""
    return os.environ.get(CONTROL_TOKEN_ENV, "").strip()


def authorized(authorization: str | None, token: str | None = None) -> bool:
    """True when the Authorization header carries the control token (compared in constant time)."""
    token = control_token() if token is None else token
    if not token:
        return False
    return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())


def refusal(token: str | None = None) -> tuple[dict, int, dict]:
    """The 401 body, status and headers of a control call without the right token."""
    token = control_token() if token is None else token
    why = (
        "missing or wrong bearer token"
        if token
        else f"control is locked: this process was started without {CONTROL_TOKEN_ENV}"
    )
    return {"error": why}, 401, {"WWW-Authenticate": 'Bearer realm="drill-control"'}
