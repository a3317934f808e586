"""Input the user names: files read whole with a size cap (regular files only, never blocking on a
FIFO or a device), JSON parsed without a crash on any bytes, and text escaped before it is printed.

Every caller turns InputError into its command's "invalid input" (exit 2) or "not intact"
(exit 1) line: the message already names the file, what is wrong and the fix.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

KiB, MiB = 1 << 10, 1 << 20
PLAN_MAX = 1 * MiB  # a drill or chaos plan, a blackout calendar, a backup target
RECORD_MAX = 64 * MiB  # results.json, manifest.json
CAB_LINE_MAX = 1 * MiB  # one line of the CAB log


class InputError(ValueError):
    """A file or value the user gave cannot be used; the message names it and the fix."""


def printable(text: Any, limit: int | None = None) -> str:
    """`text` safe to print on a terminal or in a log: every character that is not printable
    (C0 and C1 controls, DEL, line and paragraph separators, bidirectional overrides such as
    U+202E, lone surrogates) written as a Python escape (\\x1b, \\u202e); at most `limit`
    characters, shortened with "..."."""
    out = []
    for ch in str(text):
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    shown = "".join(out)
    if limit is not None and len(shown) > limit:
        shown = shown[: max(limit - 3, 0)] + "..."
    return shown


def unprintable(text: str) -> str | None:
    """The first character of `text` a person could not see as written (see printable), escaped;
    None when there is none. For values that are refused rather than escaped (sign-off fields)."""
    for ch in text:
        if not ch.isprintable():
            return printable(ch)
    return None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit >= MiB else f"{limit // KiB} KiB" if limit >= KiB else f"{limit} bytes"


def open_regular(path: str | os.PathLike[str], what: str, folder: str | os.PathLike[str] | None = None) -> int:
    """A read-only descriptor of `path`, which must be a regular file (opened without blocking,
    so a FIFO is refused, not waited on); with `folder`, a symlink is refused unless it stays
    inside that folder. InputError otherwise; FileNotFoundError passes through for the caller
    to word."""
    path = Path(path)
    if folder is not None and path.is_symlink():
        target, inside = Path(os.path.realpath(path)), Path(os.path.realpath(folder))  # a loop: not raised
        if target != inside and inside not in target.parents:
            raise InputError(
                f"{printable(path)}: {what} is a symlink to {printable(target)}, outside "
                f"{printable(inside)}; put the file itself in the folder"
            )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise InputError(f"{printable(path)}: {what} is a folder; name a file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{printable(path)}: {what} is a symlink that leads to itself; name a file") from None
        raise InputError(f"{printable(path)}: cannot read {what}: {exc.strerror or exc}") from None
    except ValueError:  # a NUL in the path
        raise InputError(f"{printable(path)}: the path has a NUL character; name the file without it") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(f"{printable(path)}: {what} is {_kind(mode)}, not a regular file; name a file")
    os.set_blocking(fd, True)
    return fd


def read_capped(
    path: str | os.PathLike[str], limit: int, what: str = "the file", folder: str | os.PathLike[str] | None = None
) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (see open_regular); InputError for
    anything else, naming the file, the limit and the fix. FileNotFoundError passes through."""
    fd = open_regular(path, what, folder)
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{printable(path)}: cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(
            f"{printable(path)}: {what} is larger than {_size(limit)}; this is not the file "
            f"meant (or it was damaged): name the right one"
        )
    return data


def parse_json(data: bytes | str, where: str) -> Any:
    """JSON of a file or line: InputError for anything that is not JSON in UTF-8 (a \\xff byte,
    nesting deeper than the parser can go, NaN or 1e999, which JSON does not have)."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    def finite(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise ValueError(f"{text[:20]} is too large for a number")
        return value

    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, parse_constant=no_constant, parse_float=finite)
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 (byte {exc.start} is {exc.object[exc.start]:#04x})") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deep to be a record") from None
    except ValueError as exc:
        raise InputError(f"{where}: not JSON ({printable(exc, 120)})") from None


def read_json(path: str | os.PathLike[str], limit: int, what: str, folder: str | os.PathLike[str] | None = None) -> Any:
    """read_capped, then parse_json."""
    return parse_json(read_capped(path, limit, what, folder), f"{printable(path)}: {what}")
