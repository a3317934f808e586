"""A platform API stand-in (python -m controlplane platform-mock) ends at once on SIGTERM, also
while it holds a request in "hang" mode: the held request gets no answer (its connection closes),
as before, without aiohttp's shutdown_timeout waited out twice (about 2 s) first."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time

import pytest
import requests

from controlplane.control_auth import CONTROL_TOKEN_ENV
from harness.net import LOOPBACK, free_port
from tests.support import wait_for

STOPPED_WITHIN = 1.9  # seconds: it takes about 0.1 (19x that: a loaded machine); aiohttp's two waits were at least 2.07


@pytest.fixture
def standin():
    token = secrets.token_hex(16)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controlplane",
            "platform-mock",
            "--platform",
            "intune",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
        ],
        env={**os.environ, CONTROL_TOKEN_ENV: token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{LOOPBACK}:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{url}/health", timeout=0.5).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(answers, timeout=30, what="the stand-in answering /health")
        yield process, url, {"Authorization": f"Bearer {token}"}
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_sigterm_ends_the_standin_at_once_while_it_holds_a_hung_request(standin):
    process, url, control = standin
    assert requests.post(f"{url}/_control", json={"mode": "hang"}, headers=control, timeout=5).status_code == 200
    seen: list = []

    def held() -> None:
        try:
            seen.append(requests.post(f"{url}/apply", json={"intent_id": 1, "idempotency_key": "k-1"}, timeout=30))
        except requests.RequestException as exc:
            seen.append(exc)

    client = threading.Thread(target=held, daemon=True)
    client.start()
    wait_for(
        lambda: requests.get(f"{url}/_control", headers=control, timeout=5).json()["hung"] == 1,
        timeout=10,
        what="the request held",
    )
    started = time.monotonic()
    process.terminate()
    process.wait(30)
    stopped = time.monotonic() - started
    client.join(10)

    assert stopped < STOPPED_WITHIN, f"{stopped:.2f} s"
    assert len(seen) == 1 and isinstance(seen[0], requests.ConnectionError), seen  # no answer, as before
