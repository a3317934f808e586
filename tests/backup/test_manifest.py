"""The manifest, pure: JSON round trip, refusal of malformed ones, mismatches in words."""

from __future__ import annotations

import hashlib
import json

import pytest

from harness.backup.manifest import Manifest, ManifestError, ObjectRef, new_snapshot_id

SID = new_snapshot_id(1795860900.5, "ab12cd34")
DATA = b"x" * 2048
SHA = hashlib.sha256(DATA).hexdigest()


def manifest(**changes) -> Manifest:
    fields = dict(
        snapshot_id=SID,
        kind="hourly",
        taken_at=1795860900.5,
        source="primary",
        objects=(ObjectRef(f"snapshots/{SID}/dump.enc", SHA, 2048),),
        encryption={"alg": "AES-256-GCM", "key_name": "backup-key", "key_version": "v1", "nonce": "00" * 12},
        tables={"events": 5},
        chain={"last_seq": 5, "last_hash": "ab" * 32},
        approvals=2,
    )
    return Manifest(**{**fields, **changes})


def test_json_round_trip_and_shape():
    m = manifest()
    assert SID == "20261128T101500Z-ab12cd34"
    data = json.loads(m.to_json())
    assert set(data) == {
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
    assert data["objects"] == [{"key": f"snapshots/{SID}/dump.enc", "sha256": SHA, "size": 2048}]
    assert Manifest.from_json(m.to_json()) == m
    assert Manifest.from_json(manifest(chain=None, approvals=None).to_json()).chain is None
    assert m.as_export().kind == "export" and m.as_export().objects == m.objects


@pytest.mark.parametrize(
    "text, words",
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"snapshot_id": SID}), "lacks kind"),
        (manifest().to_json().replace('"hourly"', '"weekly"'), "kind must be"),
        (manifest().to_json().replace(SHA, "zz"), "sha256 must be"),
        (manifest().to_json().replace(f"snapshots/{SID}/dump.enc", "elsewhere/dump.enc"), "is not under"),
    ],
)
def test_malformed_manifests_are_refused(text, words):
    with pytest.raises(ManifestError, match=words):
        Manifest.from_json(text)


def test_mismatches_name_the_object_and_say_why():
    m = manifest()
    key = f"snapshots/{SID}/dump.enc"
    assert m.mismatches({key: (SHA, 2048)}) == []
    cut = hashlib.sha256(DATA[:100]).hexdigest()
    assert m.mismatches({key: (cut, 100)}) == [
        f"{key}: size 100 != manifest 2048 (truncated); sha256 {cut[:12]}... != manifest {SHA[:12]}..."
    ]
    flipped = hashlib.sha256(b"y" + DATA[1:]).hexdigest()
    assert m.mismatches({key: (flipped, 2048)}) == [f"{key}: sha256 {flipped[:12]}... != manifest {SHA[:12]}..."]
    assert m.mismatches({}) == [f"{key}: missing"]
