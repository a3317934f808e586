"""manifest.json of an output folder: the SHA-256 of each file a drill wrote (results.json,
junit.xml, report.html, report.pdf when made, and the plan as run). The CAB log line holds the
digest of the manifest itself, so an edit of any file, or of the manifest, is found."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report.files import atomic_write_text

FILENAME = "manifest.json"
PLAN_AS_RUN = "plan-as-run.yaml"
COVERED = ("results.json", "junit.xml", "report.html", "report.pdf", PLAN_AS_RUN)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(out_dir: str | os.PathLike[str], about: dict[str, Any]) -> str:
    """Write manifest.json over the covered files present in `out_dir`; returns its sha256."""
    out_dir = Path(out_dir)
    files = {name: sha256_file(out_dir / name) for name in COVERED if (out_dir / name).is_file()}
    text = json.dumps({**about, "algorithm": "sha256", "files": files}, indent=2, sort_keys=True) + "\n"
    atomic_write_text(out_dir / FILENAME, text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class DirCheck:
    manifest_sha256: str | None = None
    problem: str | None = None       # the first bad file, said plainly; None when intact

    @property
    def intact(self) -> bool:
        return self.problem is None


def check_dir(out_dir: str | os.PathLike[str]) -> DirCheck:
    """Every file the manifest lists has the digest it records (the first mismatch is named)."""
    out_dir = Path(out_dir)
    path = out_dir / FILENAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return DirCheck(problem=f"{path}: no manifest (not a drill output folder, or written before manifests)")
    check = DirCheck(manifest_sha256=hashlib.sha256(data).hexdigest())
    try:
        files = json.loads(data)["files"]
        if not isinstance(files, dict) or not files:
            raise ValueError("no files listed")
    except (ValueError, KeyError, TypeError) as exc:
        check.problem = f"{path}: not a manifest ({exc})"
        return check
    for name, digest in sorted(files.items()):
        target = out_dir / name
        if Path(name).name != name:
            check.problem = f"{path}: lists {name!r}, outside the folder"
        elif not target.is_file():
            check.problem = f"{target}: listed in the manifest but missing"
        elif sha256_file(target) != digest:
            check.problem = f"{target}: changed since the drill wrote it (sha256 differs from the manifest)"
        if check.problem:
            break
    return check
