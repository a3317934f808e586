"""Who ran a drill, who approved it, under which change and in which window.

Plan keys `owner`, `operator`, `approver`, `change_ticket` and `window` ({start, end}, ISO 8601
with a time zone), overridden by the `drill run` flags of the same names. The operator defaults
to the OS user. A run outside its window is refused before anything starts unless
`--outside-window` is given; then the record and the report say it ran outside.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .errors import quoted
from .inputs import unprintable

PEOPLE = ("owner", "operator", "approver", "change_ticket")
KEYS = (*PEOPLE, "window")
MAX_TEXT = 200


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def contains(self, when: datetime) -> bool:
        return self.start <= when <= self.end

    def text(self) -> str:
        return f"{_iso(self.start)} to {_iso(self.end)}"


@dataclass(frozen=True)
class SignOff:
    owner: str | None = None
    operator: str | None = None
    approver: str | None = None
    change_ticket: str | None = None
    window: Window | None = None
    outside_window: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {k: getattr(self, k) for k in PEOPLE}
        data["window"] = (
            None if self.window is None else {"start": _iso(self.window.start), "end": _iso(self.window.end)}
        )
        data["outside_window"] = self.outside_window
        return data


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quoted(value: Any) -> str:
    """repr(value) capped (harness.errors.quoted: never the whole of a huge value)."""
    return quoted(value)


def _text(value: Any, key: str, fail: Callable[[str, str], Exception]) -> str:
    """One line a person reads in the report and the CAB log: a control character (ESC, BEL, DEL,
    NEL), a line separator or a bidirectional override (U+202E) is refused, not escaped, since
    the record is signed as given."""
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\r" in value or len(value) > MAX_TEXT:
        raise fail(key, f"must be one line of text of 1 to {MAX_TEXT} characters, got {_quoted(value)}")
    bad = unprintable(value)
    if bad is not None:
        raise fail(
            key,
            f"has the character {bad}, which a reader cannot see as written (a control "
            f"character, line separator or text direction override); write the value without it",
        )
    return value.strip()


def _when(value: Any, key: str, fail: Callable[[str, str], Exception]) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise fail(key, f"not an ISO 8601 time: {_quoted(value)}; e.g. 2026-12-01T06:00:00Z") from None
    if not isinstance(value, datetime):
        raise fail(key, f"must be an ISO 8601 time such as 2026-12-01T06:00:00Z, got {_quoted(value)}")
    if value.tzinfo is None:
        raise fail(key, f"{value.isoformat()} has no time zone; add one, e.g. 2026-12-01T06:00:00Z")
    try:
        value.astimezone(UTC)  # the record and the report give it in UTC
    except OverflowError:
        raise fail(
            key, f"{value.isoformat()} is outside years 1 to 9999 in UTC; give a real time, e.g. 2026-12-01T06:00:00Z"
        ) from None
    return value


def parse_window(value: Any, fail: Callable[[str, str], Exception], key: str = "window") -> Window:
    """{start, end} (a plan) or "START/END" (the --window flag)."""
    if isinstance(value, str) and "/" in value:
        start, end = value.split("/", 1)
        value = {"start": start, "end": end}
    if not isinstance(value, dict) or set(map(str, value)) != {"start", "end"} or len(value) != 2:
        raise fail(key, "must be {start: TIME, end: TIME} (a flag: START/END), ISO 8601 with a time zone")
    window = Window(_when(value["start"], f"{key}.start", fail), _when(value["end"], f"{key}.end", fail))
    if window.end <= window.start:
        raise fail(key, f"ends before it starts: {window.text()}")
    return window


def parse_signoff(data: dict[str, Any], fail: Callable[[str, str], Exception]) -> SignOff:
    """The plan's sign-off keys (all optional)."""
    values: dict[str, Any] = {k: _text(data[k], k, fail) for k in PEOPLE if data.get(k) is not None}
    if data.get("window") is not None:
        values["window"] = parse_window(data["window"], fail)
    return SignOff(**values)


def with_flags(plan: SignOff, flags: dict[str, Any], fail: Callable[[str, str], Exception]) -> SignOff:
    """The plan's sign-off with the flags given on the command line winning; the operator
    defaults to the OS user."""
    values: dict[str, Any] = {
        k: _text(flags[k], f"--{k.replace('_', '-')}", fail) for k in PEOPLE if flags.get(k) is not None
    }
    if flags.get("window") is not None:
        values["window"] = parse_window(flags["window"], fail, "--window")
    merged = replace(plan, **values)
    if merged.operator is None:
        merged = replace(merged, operator=getpass.getuser())
    return merged


def check_window(signoff: SignOff, now: datetime, allow_outside: bool) -> tuple[SignOff, str | None]:
    """(the sign-off as run, an error message when the run must be refused)."""
    if signoff.window is None or signoff.window.contains(now):
        return signoff, None
    if allow_outside:
        return replace(signoff, outside_window=True), None
    return signoff, (
        f"now ({_iso(now)}) is outside the change window {signoff.window.text()}; run inside it, "
        f"or give --outside-window to run anyway (the report and the CAB record will say so)"
    )
