"""manifest.json of an output folder: the SHA-256 of each file a drill wrote (results.json,
junit.xml, report.html, report.pdf when made, and the plan as run). The CAB log line holds the
digest of the manifest itself, so an edit of any file, or of the manifest, is found."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.files import atomic_write_text
from harness.inputs import RECORD_MAX, InputError, open_regular, parse_json, printable, read_capped

FILENAME = "manifest.json"
PLAN_AS_RUN = "plan-as-run.yaml"
COVERED = ("results.json", "junit.xml", "report.html", "report.pdf", PLAN_AS_RUN)


def sha256_file(path: Path, folder: Path | None = None) -> str:
    """sha256 of a regular file (open_regular: a FIFO or device is an InputError, never read)."""
    digest = hashlib.sha256()
    with os.fdopen(open_regular(path, "a file of the folder", folder), "rb") as f:
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
    problem: str | None = None  # the first bad file, said plainly; None when intact
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256, as the manifest lists them

    @property
    def intact(self) -> bool:
        return self.problem is None


def check_dir(out_dir: str | os.PathLike[str]) -> DirCheck:
    """Every file the manifest lists has the digest it records (the first mismatch is named).
    The manifest and every file it lists must be regular files in the folder (a FIFO, a device or
    a symlink out of the folder is a problem, never waited on or followed); the manifest is read
    with a cap of RECORD_MAX bytes."""
    out_dir = Path(out_dir)
    path = out_dir / FILENAME
    shown = printable(path)
    try:
        data = read_capped(path, RECORD_MAX, "the manifest", folder=out_dir)
    except FileNotFoundError:
        return DirCheck(problem=f"{shown}: no manifest (not a drill output folder, or written before manifests)")
    except InputError as exc:
        return DirCheck(problem=str(exc))
    check = DirCheck(manifest_sha256=hashlib.sha256(data).hexdigest())
    try:
        manifest = parse_json(data, shown)
        files = manifest.get("files") if isinstance(manifest, dict) else None
        if not isinstance(files, dict) or not files or not all(isinstance(v, str) for v in files.values()):
            raise InputError(f'{shown}: not a manifest (no "files" mapping of names to sha256 digests)')
    except InputError as exc:
        check.problem = str(exc)
        return check
    check.files = dict(files)
    for name, digest in sorted(files.items()):
        target = out_dir / name
        if not name or Path(name).name != name or name in (".", ".."):
            check.problem = f"{shown}: lists {printable(repr(name), 80)}, outside the folder"
            break
        try:
            actual = sha256_file(target, folder=out_dir)
        except FileNotFoundError:
            check.problem = f"{printable(target)}: listed in the manifest but missing"
        except InputError as exc:
            check.problem = f"{exc} (listed in the manifest)"
        else:
            if actual != digest:
                check.problem = (
                    f"{printable(target)}: changed since the drill wrote it (sha256 differs from the manifest)"
                )
        if check.problem:
            break
    return check
