"""What test_opkind and test_eventkind read from harness/ sources with ast: the kinds, members and
detail keys a module names (their scanners, each tested on a snippet there)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[3] / "harness"


def call_name(func: ast.expr) -> str | None:
    """The called name: `f` of f(...) and of x.f(...)."""
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def kind_like(text: str) -> bool:
    """snake_case, as every op and event kind (not an HTTP method, nor a sentence a step reads)."""
    return text.isidentifier() and text.islower()


def sources(*paths: Path) -> Iterator[tuple[Path, str]]:
    """Each Python file under the folders (or the file) given, with its text."""
    for path in paths:
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            yield file, file.read_text(encoding="utf-8")


def members_named(source: str, enum: str) -> set[str]:
    """Every `ENUM.NAME` the source names."""
    return {
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == enum
    }


def keys_read(source: str, reader: str) -> set[str]:
    """The keys read as `reader(x).get("k")` or `reader(x)["k"]` (mypy checks a TypedDict's [] but
    not its .get)."""
    keys: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        target = key = None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
        ):
            target, key = node.func.value, node.args[0]
        elif isinstance(node, ast.Subscript):
            target, key = node.value, node.slice
        if (
            isinstance(target, ast.Call)
            and call_name(target.func) == reader
            and isinstance(key, ast.Constant)
            and isinstance(key.value, str)
        ):
            keys.add(key.value)
    return keys
