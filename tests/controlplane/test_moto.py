"""The embedded moto lab: starts on loopback, stops leaving nothing, and is reaped after a kill."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.lab import proc, reaper
from harness.lab.moto import MotoServer
from tests.controlplane.cplab import REPO
from tests.support import refuses

pytestmark = pytest.mark.timeout(60)  # integration: tests/conftest.py, by folder

# A harness that starts moto, prints its registration and pid, then waits to be killed.
OWNER = """
import json, sys, time
from harness.lab.moto import MotoServer
moto = MotoServer(state_dir=sys.argv[1]).start()
print(json.dumps({"lab_id": moto.lab_id, "pid": moto.process.pid, "port": moto.port}), flush=True)
time.sleep(600)
"""


def test_moto_answers_s3_on_loopback_and_down_leaves_nothing(tmp_path):
    with MotoServer(state_dir=tmp_path) as moto:
        assert moto.endpoint_url.startswith("http://127.0.0.1:")
        client = moto.client("s3")
        client.create_bucket(Bucket="drill-probe")
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["drill-probe"]
        moto.reset()
        assert client.list_buckets()["Buckets"] == []
        pid, address = moto.process.pid, f"127.0.0.1:{moto.port}"
        assert list(tmp_path.glob("*.json"))  # registered while it runs
    assert not proc.is_alive(pid)
    assert refuses(address)
    assert not list(tmp_path.glob("*.json"))
    moto.down()  # idempotent


def test_a_killed_owners_moto_is_reaped_by_the_next_run(tmp_path):
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        started = json.loads(owner.stdout.readline())
    finally:
        owner.kill()
        owner.wait(timeout=10)
    assert proc.is_alive(started["pid"])  # the orphan still serves
    assert reaper.reap_stale(tmp_path) == [started["lab_id"]]
    assert proc.wait_gone([started["pid"]], timeout=5) == []
    assert refuses(f"127.0.0.1:{started['port']}")
    assert not list(tmp_path.glob("*.json"))
