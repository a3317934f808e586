"""A snapshot's manifest: what was taken, when (Control Plane clock), and the bytes to expect.

Pure: no I/O. A snapshot exists only once its manifest is written (the manifest is written last).

JSON shape (``Manifest.to_json()``; ``from_json()`` refuses anything else with ManifestError)::

    {"snapshot_id": "20261128T101500Z-ab12cd34", "kind": "hourly" | "export",
     "taken_at": 1795860900.25,            # epoch seconds on the Control Plane's clock (cp_now())
     "source": "primary",                  # the node the snapshot was read from
     "objects": [{"key": "snapshots/<id>/dump.enc", "sha256": "<hex>", "size": 2048}],
     "encryption": {"alg": "AES-256-GCM", "key_name": "backup-key", "key_version": "<S3 version id>",
                    "nonce": "<24 hex>"},
     "tables": {"events": 12, "intents": 4},   # row counts of every table of schema public
     "chain": {"last_seq": 12, "last_hash": "<hex>"} | null,  # event_chain_head, null without it
     "approvals": 3 | null,                # events of type ApprovalRecorded, null without events
     "format": "pg_dump -Fc"}

``mismatches(observed)`` compares observed (sha256, size) per object key with the manifest and
answers one reason in words per object that does not match, e.g.
``"snapshots/<id>/dump.enc: size 100 != manifest 2048 (truncated); sha256 3f2a9c0e1b7d... !=
manifest 9b1c44aa0f12..."``, or ``"...: missing"``; an empty list means every object matches.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("hourly", "export")
FORMAT = "pg_dump -Fc"
ALG = "AES-256-GCM"
DUMP_NAME = "dump.enc"
MANIFEST_NAME = "manifest.json"
SNAPSHOT_PREFIX = "snapshots/"
_HEX = set("0123456789abcdef")


class ManifestError(ValueError):
    """A manifest that is not one: the message names the field."""


def snapshot_prefix(snapshot_id: str) -> str:
    return f"{SNAPSHOT_PREFIX}{snapshot_id}/"


def object_key(snapshot_id: str, name: str = DUMP_NAME) -> str:
    return snapshot_prefix(snapshot_id) + name


def manifest_key(snapshot_id: str) -> str:
    return object_key(snapshot_id, MANIFEST_NAME)


def new_snapshot_id(taken_at: float, suffix: str) -> str:
    """``YYYYmmddTHHMMSSZ-<suffix>`` of taken_at (UTC, Control Plane clock): sorts by time."""
    if not suffix or not all(c in _HEX for c in suffix):
        raise ValueError("snapshot id suffix must be lowercase hex")
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(taken_at)) + "-" + suffix


def valid_snapshot_id(snapshot_id: str) -> bool:
    return (
        isinstance(snapshot_id, str)
        and 0 < len(snapshot_id) <= 100
        and "/" not in snapshot_id
        and snapshot_id.strip() == snapshot_id
        and snapshot_id not in (".", "..")
    )


def _short(digest: str) -> str:
    return digest[:12] + "..."


@dataclass(frozen=True)
class ObjectRef:
    key: str
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Manifest:
    snapshot_id: str
    kind: str
    taken_at: float
    source: str
    objects: tuple[ObjectRef, ...]
    encryption: Mapping[str, str]
    tables: Mapping[str, int]
    chain: Mapping[str, Any] | None
    approvals: int | None
    format: str = FORMAT
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)  # unknown fields, kept

    def __post_init__(self) -> None:
        _validate(self)

    # ---- serialisation -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            **dict(self.extra),
            "snapshot_id": self.snapshot_id,
            "kind": self.kind,
            "taken_at": self.taken_at,
            "source": self.source,
            "objects": [{"key": o.key, "sha256": o.sha256, "size": o.size} for o in self.objects],
            "encryption": dict(self.encryption),
            "tables": dict(self.tables),
            "chain": dict(self.chain) if self.chain is not None else None,
            "approvals": self.approvals,
            "format": self.format,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError("manifest is not a JSON object")
        missing = [
            k
            for k in (
                "snapshot_id",
                "kind",
                "taken_at",
                "source",
                "objects",
                "encryption",
                "tables",
                "chain",
                "approvals",
                "format",
            )
            if k not in data
        ]
        if missing:
            raise ManifestError(f"manifest lacks {', '.join(missing)}")
        objects = data["objects"]
        if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
            raise ManifestError("manifest objects must be a list of objects")
        try:
            refs = tuple(ObjectRef(o["key"], o["sha256"], o["size"]) for o in objects)
        except KeyError as exc:
            raise ManifestError(f"a manifest object lacks {exc.args[0]}") from None
        known = {
            "snapshot_id",
            "kind",
            "taken_at",
            "source",
            "objects",
            "encryption",
            "tables",
            "chain",
            "approvals",
            "format",
        }
        return cls(
            snapshot_id=data["snapshot_id"],
            kind=data["kind"],
            taken_at=data["taken_at"],
            source=data["source"],
            objects=refs,
            encryption=data["encryption"],
            tables=data["tables"],
            chain=data["chain"],
            approvals=data["approvals"],
            format=data["format"],
            extra={k: v for k, v in data.items() if k not in known},
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"manifest is not JSON: {exc}") from None
        return cls.from_dict(data)

    # ---- checks ------------------------------------------------------------------------

    def object(self, name_or_key: str) -> ObjectRef:
        for ref in self.objects:
            if name_or_key in (ref.key, ref.name):
                return ref
        raise KeyError(f"snapshot {self.snapshot_id} has no object {name_or_key!r}")

    def mismatches(self, observed: Mapping[str, tuple[str, int] | None]) -> list[str]:
        """Reasons, one per object of the manifest whose observed (sha256 hex, size) differs
        (observed maps object key -> (sha256, size), or None / absent when it is missing)."""
        reasons = []
        for ref in self.objects:
            seen = observed.get(ref.key)
            if seen is None:
                reasons.append(f"{ref.key}: missing")
                continue
            sha256, size = seen
            parts = []
            if size != ref.size:
                how = "truncated" if size < ref.size else "longer than recorded"
                parts.append(f"size {size} != manifest {ref.size} ({how})")
            if sha256 != ref.sha256:
                parts.append(f"sha256 {_short(sha256)} != manifest {_short(ref.sha256)}")
            if parts:
                reasons.append(f"{ref.key}: " + "; ".join(parts))
        return reasons

    def as_export(self) -> Manifest:
        """The same snapshot as a cross-region export (same id, objects and contents)."""
        return Manifest(
            snapshot_id=self.snapshot_id,
            kind="export",
            taken_at=self.taken_at,
            source=self.source,
            objects=self.objects,
            encryption=self.encryption,
            tables=self.tables,
            chain=self.chain,
            approvals=self.approvals,
            format=self.format,
            extra=self.extra,
        )


def _validate(m: Manifest) -> None:
    if not valid_snapshot_id(m.snapshot_id):
        raise ManifestError(f"bad snapshot_id {m.snapshot_id!r}")
    if m.kind not in KINDS:
        raise ManifestError(f"kind must be one of {', '.join(KINDS)}, not {m.kind!r}")
    if isinstance(m.taken_at, bool) or not isinstance(m.taken_at, (int, float)) or not math.isfinite(m.taken_at):
        raise ManifestError("taken_at must be epoch seconds")
    if not isinstance(m.source, str):
        raise ManifestError("source must be a string")
    if not m.objects:
        raise ManifestError("a manifest names at least one object")
    for ref in m.objects:
        if not isinstance(ref.key, str) or not ref.key.startswith(snapshot_prefix(m.snapshot_id)):
            raise ManifestError(f"object key {ref.key!r} is not under {snapshot_prefix(m.snapshot_id)}")
        if not isinstance(ref.sha256, str) or len(ref.sha256) != 64 or not set(ref.sha256) <= _HEX:
            raise ManifestError(f"object {ref.key}: sha256 must be 64 lowercase hex digits")
        if isinstance(ref.size, bool) or not isinstance(ref.size, int) or ref.size < 0:
            raise ManifestError(f"object {ref.key}: size must be a byte count")
    enc = m.encryption
    if not isinstance(enc, Mapping) or enc.get("alg") != ALG:
        raise ManifestError(f"encryption.alg must be {ALG}")
    for name in ("key_name", "key_version", "nonce"):
        if not isinstance(enc.get(name), str) or not enc.get(name):
            raise ManifestError(f"encryption.{name} must be a non-empty string")
    if not isinstance(m.tables, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in m.tables.items()
    ):
        raise ManifestError("tables must map table names to row counts")
    if m.chain is not None and (not isinstance(m.chain, Mapping) or set(m.chain) != {"last_seq", "last_hash"}):
        raise ManifestError("chain must be {last_seq, last_hash} or null")
    if m.approvals is not None and (isinstance(m.approvals, bool) or not isinstance(m.approvals, int)):
        raise ManifestError("approvals must be a count or null")
    if m.format != FORMAT:
        raise ManifestError(f"format must be {FORMAT!r}")
