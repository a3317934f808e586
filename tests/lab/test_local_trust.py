"""Local trust: the harness runs as root, so nothing another local user can write may steer it.

1. the lab registry: only this user's private state dir, only records this user wrote, only pids
   that are still the registered process, only dirs of this user under a temp dir;
2. the initdb template cache: private, and a template carrying settings we did not write is unused;
3. secret files, manifests and records: never written through a planted symlink.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from harness import cli
from harness.lab import proc, reaper
from harness.lab.capabilities import Clock
from harness.lab.embedded import EmbeddedLab, manifest_path
from harness.lab.postgres import PgCluster
from harness.wait import poll

NOBODY = pwd.getpwnam("nobody")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    """A private registry for this test (the default and every caller go through DRILL_STATE_DIR)."""
    directory = tmp_path / "state"
    monkeypatch.setenv("DRILL_STATE_DIR", str(directory))
    return reaper.state_dir()


@pytest.fixture
def decoy(request):
    """An unrelated process that carries the tag in its command line, and a dir of ours in /tmp."""
    tag = "drilldecoy-" + os.urandom(4).hex()
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", tag])
    poll(lambda: proc.start_time(process.pid), until=lambda v: v is not None, timeout=10)
    directory = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    yield tag, process, directory
    process.kill()
    process.wait(10)
    shutil.rmtree(directory, ignore_errors=True)


def dead_owner() -> tuple[int, int]:
    """A pid and start time of a process that has exited (the owner of a killed harness run)."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started = poll(lambda: proc.start_time(owner.pid), until=lambda v: v is not None, timeout=10).value
    owner.kill()
    owner.wait(10)
    return owner.pid, started


def record(state: Path, tag: str, process, directory: Path, **changes) -> Path:
    pid, started = dead_owner()
    data = {
        "schema": reaper.RECORD_SCHEMA,
        "lab_id": tag,
        "kind": "test-decoy",
        "owner_pid": pid,
        "owner_start_time": started,
        "tag": tag,
        "pids": [process.pid],
        "starts": {str(process.pid): proc.start_time(process.pid)},
        "dirs": [str(directory)],
        "created": time.time() - 60,
        **changes,
    }
    path = state / f"{tag}.json"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path


def untouched(process, directory: Path) -> bool:
    return process.poll() is None and proc.is_alive(process.pid) and directory.is_dir()


# ---- 1. the lab registry ------------------------------------------------------------------------


def test_a_record_we_wrote_is_reaped(state, decoy):
    """The control: a trusted record of a dead owner gets its process killed and its dir removed."""
    tag, process, directory = decoy
    record(state, tag, process, directory)
    assert reaper.reap_stale() == [tag]
    assert process.wait(10) is not None and not directory.exists()


@needs_root
def test_a_record_owned_by_another_user_is_not_acted_on(state, decoy):
    tag, process, directory = decoy
    path = record(state, tag, process, directory)
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    assert reaper.reap_stale() == []
    assert untouched(process, directory) and path.exists()


def test_a_world_writable_record_is_not_acted_on(state, decoy):
    tag, process, directory = decoy
    path = record(state, tag, process, directory)
    path.chmod(0o666)
    assert reaper.reap_stale() == []
    assert untouched(process, directory)


def test_a_symlinked_record_is_not_acted_on(state, decoy, tmp_path):
    tag, process, directory = decoy
    path = record(state, tag, process, directory)
    elsewhere = tmp_path / "elsewhere.json"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    assert reaper.reap_stale() == []
    assert untouched(process, directory)


def test_a_pid_with_another_start_time_is_not_signalled(state, decoy):
    """The pid was reused: same number, another process (another start time); the record was
    written after the decoy started, so the tag alone does not make it the lab's either."""
    tag, process, directory = decoy
    real = proc.start_time(process.pid)
    record(
        state, tag, process, directory, starts={str(process.pid): real + 1}, created=proc.started_at(process.pid) + 10
    )
    assert reaper.reap_stale() == [tag]
    assert process.poll() is None and proc.is_alive(process.pid)


def test_a_record_without_start_times_is_dropped_without_acting(state, decoy):
    tag, process, directory = decoy
    path = record(state, tag, process, directory, owner_start_time=None, starts={})
    assert reaper.reap_stale() == []
    assert untouched(process, directory) and not path.exists()


def test_a_dir_outside_the_temp_dirs_or_not_ours_is_not_removed(state, decoy, tmp_path):
    tag, process, directory = decoy
    outside = Path.home() / f".{tag}-not-a-lab"  # not under a temp dir
    outside.mkdir()
    try:
        foreign = Path(tempfile.mkdtemp(prefix=f"{tag}-foreign-"))
        if os.geteuid() == 0:
            os.chown(foreign, NOBODY.pw_uid, NOBODY.pw_gid)
        link = Path(tempfile.gettempdir()) / f"{tag}-link"
        link.symlink_to(outside)
        record(state, tag, process, directory, dirs=[str(outside), str(link), str(foreign), "/tmp/../etc"])
        assert reaper.reap_stale() == [tag]
        assert outside.is_dir() and link.is_symlink() and Path("/etc").is_dir()
        assert foreign.is_dir() == (os.geteuid() == 0)
    finally:
        shutil.rmtree(outside, ignore_errors=True)
        for p in Path(tempfile.gettempdir()).glob(f"{tag}-*"):
            p.unlink() if p.is_symlink() else shutil.rmtree(p, ignore_errors=True)


def test_lab_down_signals_only_the_owner_that_wrote_the_manifest(state, decoy, capsys):
    """A manifest naming a live pid with another start time (or written by another user) does not
    get that process SIGTERMed by `drill lab down`."""
    tag, process, directory = decoy
    manifest = state / f"{tag}.lab.json"
    manifest.write_text(
        json.dumps({"lab_id": tag, "owner_pid": process.pid, "owner_start_time": proc.start_time(process.pid) + 1})
    )
    manifest.chmod(0o600)
    assert cli.main(["lab", "down"]) == 0
    if os.geteuid() == 0:
        manifest.write_text(
            json.dumps({"lab_id": tag, "owner_pid": process.pid, "owner_start_time": proc.start_time(process.pid)})
        )
        os.chown(manifest, NOBODY.pw_uid, NOBODY.pw_gid)
        assert cli.main(["lab", "down"]) == 0
    assert process.poll() is None and proc.is_alive(process.pid)


def test_the_default_state_dir_is_private_to_the_user(monkeypatch):
    monkeypatch.delenv("DRILL_STATE_DIR", raising=False)
    directory = reaper.state_dir()
    st = directory.lstat()
    assert directory == Path(f"/tmp/drill-{os.geteuid()}")
    assert st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0


@pytest.mark.parametrize("how", ["world-writable", "group-writable", "owned-by-nobody", "symlink"])
def test_an_unsafe_state_dir_is_refused_naming_it_and_the_fix(tmp_path, monkeypatch, capsys, how):
    if how == "owned-by-nobody" and os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    directory = tmp_path / "state"
    if how == "symlink":
        (tmp_path / "real").mkdir(mode=0o700)
        directory.symlink_to(tmp_path / "real")
    else:
        directory.mkdir()
        directory.chmod({"world-writable": 0o777, "group-writable": 0o770}.get(how, 0o700))
        if how == "owned-by-nobody":
            os.chown(directory, NOBODY.pw_uid, NOBODY.pw_gid)
    monkeypatch.setenv("DRILL_STATE_DIR", str(directory))
    with pytest.raises(reaper.UnsafeStateDir) as refused:
        reaper.state_dir()
    message = str(refused.value)
    assert str(directory) in message and "DRILL_STATE_DIR" in message
    assert {
        "world-writable": "chmod 700",
        "group-writable": "chmod 700",
        "owned-by-nobody": "rm -rf",
        "symlink": "rm ",
    }[how] in message
    with pytest.raises(reaper.UnsafeStateDir):
        reaper.Registration("drillx-" + os.urandom(4).hex(), "test")
    # the command line says it in one line, exit 2 (invalid input), no traceback
    assert cli.main(["lab", "status"]) == 2
    err = capsys.readouterr().err
    assert str(directory) in err and "Traceback" not in err


# ---- 2. the initdb template cache ------------------------------------------------------------


@pytest.fixture
def base_dir():
    """A lab dir of its own (on tmpfs like the default one), so the test's caches are its own."""
    directory = Path(tempfile.mkdtemp(prefix="drill-trust-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    directory.chmod(0o711)  # the server's OS user reaches the lab dirs below it
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


ARCHIVE = "\narchive_mode = on\narchive_command = 'touch /tmp/drill-archived-%f'\n"


def archive_command(base_dir: Path, state: Path) -> str:
    with PgCluster(base_dir=base_dir, state_dir=state) as cluster:
        return cluster.primary.query("SHOW archive_command")[0][0]


def seeded(base_dir: Path, state: Path, cache_name: str) -> Path:
    """A template with archive_command at base_dir/cache_name/<key> (a copy of a real one)."""
    with PgCluster(base_dir=base_dir, state_dir=state) as cluster:
        key = cluster._template_key()
    good = base_dir / f"drill-pg-templates-{os.geteuid()}" / key
    assert (good / "PG_VERSION").exists()  # the first lab stored its template
    target = base_dir / cache_name / key
    if target != good:
        target.parent.mkdir(exist_ok=True)
        shutil.copytree(good, target, symlinks=True)
    with open(target / "postgresql.conf", "a") as f:
        f.write(ARCHIVE)
    return target


def test_a_template_seeded_at_the_old_shared_path_is_not_used(base_dir, state):
    template = seeded(base_dir, state, "drill-pg-templates")
    shutil.rmtree(base_dir / f"drill-pg-templates-{os.geteuid()}")
    os.chmod(template.parent, 0o777)
    assert archive_command(base_dir, state) in ("(disabled)", "")


def test_a_template_with_settings_we_did_not_write_is_not_used(base_dir, state):
    template = seeded(base_dir, state, f"drill-pg-templates-{os.geteuid()}")
    assert archive_command(base_dir, state) in ("(disabled)", "")
    # removed, and the lab (which ran initdb instead) stored a fresh one in its place
    assert ARCHIVE.strip() not in (template / "postgresql.conf").read_text()


@pytest.mark.parametrize("how", ["owned-by-nobody", "world-writable"])
def test_a_template_cache_of_another_owner_or_mode_is_not_used(base_dir, state, how):
    if how == "owned-by-nobody" and os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    template = seeded(base_dir, state, f"drill-pg-templates-{os.geteuid()}")
    # settings check aside: make the conf look pristine again, only the dir is wrong
    cache = template.parent
    if how == "owned-by-nobody":
        for parent, dirs, files in os.walk(cache):
            for entry in [parent, *(os.path.join(parent, e) for e in dirs + files)]:
                os.chown(entry, NOBODY.pw_uid, NOBODY.pw_gid, follow_symlinks=False)
    else:
        cache.chmod(0o777)
    assert archive_command(base_dir, state) in ("(disabled)", "")
    assert template.exists()  # left alone: not ours to remove


# ---- 3. secret files, manifests, records: never through a symlink --------------------------------


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim"
    path.write_text("precious\n")
    return path


def test_a_secret_file_is_not_written_through_a_planted_symlink(state, victim):
    lab = EmbeddedLab()
    planted = state / f"{lab.lab_id}.secret.pg-password"
    planted.symlink_to(victim)
    path = lab.write_secret("pg-password", "s3cret")
    assert victim.read_text() == "precious\n"
    assert path == planted and not path.is_symlink() and path.read_text() == "s3cret"
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_manifest_is_not_written_through_a_planted_symlink(state, victim):
    lab = EmbeddedLab()
    planted = manifest_path(lab.lab_id)
    planted.symlink_to(victim)
    lab._write_manifest()
    assert victim.read_text() == "precious\n"
    data = json.loads(planted.read_text())
    assert not planted.is_symlink() and data["owner_start_time"] == proc.start_time(os.getpid())


def test_a_lab_record_is_not_written_through_a_planted_symlink(state, victim):
    lab_id = "drilltrust-" + os.urandom(4).hex()
    planted = state / f"{lab_id}.json"
    planted.symlink_to(victim)
    registration = reaper.Registration(lab_id, "test")
    try:
        registration.add_pid(os.getpid())
        assert victim.read_text() == "precious\n" and not planted.is_symlink()
        data = json.loads(planted.read_text())
        assert data["starts"] == {str(os.getpid()): proc.start_time(os.getpid())}
        assert planted.stat().st_mode & 0o777 == 0o600
    finally:
        registration.close()


# ---- 4. control endpoints need the lab's bearer token --------------------------------------------
# (the fault gateway: tests/lab/test_httpfault.py; clock control: tests/controlplane/test_backups.py)


def platform_mock(token: str | None):
    from controlplane.control_auth import CONTROL_TOKEN_ENV
    from harness.net import free_port

    env = {k: v for k, v in os.environ.items() if k != CONTROL_TOKEN_ENV}
    if token is not None:
        env[CONTROL_TOKEN_ENV] = token
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controlplane",
            "platform-mock",
            "--platform",
            "jamf",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def health():
        try:
            return requests.get(url + "/health", timeout=1).status_code
        except requests.RequestException:
            return None

    assert poll(health, until=lambda s: s == 200 or process.poll() is not None, timeout=20).value == 200
    return process, url


def test_the_platform_stand_in_controls_need_the_labs_bearer_token():
    token = "t-" + os.urandom(12).hex()
    process, url = platform_mock(token)
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            assert requests.get(url + "/_control", headers=headers, timeout=5).status_code == 401
            refused = requests.post(url + "/_control", json={"mode": "error"}, headers=headers, timeout=5)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        auth = {"Authorization": f"Bearer {token}"}
        assert requests.get(url + "/_control", headers=auth, timeout=5).json()["mode"] == "ok"  # unchanged
        assert requests.post(url + "/_control", json={"mode": "error"}, headers=auth, timeout=5).status_code == 200
        assert requests.get(url + "/_control", headers=auth, timeout=5).json()["mode"] == "error"
        assert token not in proc.cmdline(process.pid)  # never on the command line
    finally:
        proc.stop_process(process)


def test_a_platform_stand_in_started_without_a_token_refuses_every_control_call():
    process, url = platform_mock(None)
    try:
        for headers in ({}, {"Authorization": "Bearer "}):
            assert (
                requests.post(url + "/_control", json={"mode": "error"}, headers=headers, timeout=5).status_code == 401
            )
        assert requests.get(url + "/health", timeout=5).status_code == 200
    finally:
        proc.stop_process(process)


def test_the_embedded_lab_gives_its_token_to_the_control_endpoints_by_environment():
    lab = EmbeddedLab()
    assert lab.capability(Clock).control_headers() == {"Authorization": f"Bearer {lab.control_token}"}
    assert EmbeddedLab().control_token != lab.control_token
