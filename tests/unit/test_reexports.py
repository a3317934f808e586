"""The error and config toolkit is imported from harness.errors, where it is defined, never through
a module that only passes it on (harness.plan, harness.lab.base): one place per name."""

from __future__ import annotations

import ast
from pathlib import Path

import harness.errors
import harness.lab.base

ROOT = Path(__file__).resolve().parents[2]
TOOLKIT = {name for name in vars(harness.errors) if not name.startswith("__")}
PASSED_ON = {"harness.plan": TOOLKIT, "harness.lab.base": TOOLKIT}


def imported_from(path: Path, node: ast.ImportFrom) -> str:
    """The module an import names, relative imports resolved from the file's package."""
    if node.level == 0:
        return node.module or ""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def test_no_module_imports_the_toolkit_through_a_module_that_passes_it_on():
    found = []
    for folder in ("harness", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and imported_from(path, node) in PASSED_ON:
                    names = {a.name for a in node.names} & PASSED_ON[imported_from(path, node)]
                    if names:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {sorted(names)}")
    assert found == [], "import these from harness.errors:\n" + "\n".join(found)


def test_the_lab_base_does_not_re_export_lab_start_error():
    assert not hasattr(harness.lab.base, "LabStartError")
    assert "LabStartError" not in harness.lab.base.__all__
