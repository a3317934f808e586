"""`drill schedule` as real processes: two daemons sharing a PostgreSQL store (the leader killed,
the standby takes over), and a drill triggered through the store that really runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.lab.postgres import APP_DATABASE, APP_ROLE, PgCluster
from harness.schedule.daemon import open_store
from harness.wait import poll
from tests.schedule.test_daemon import write_plan

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def drill(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def daemon(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "schedule", "run", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
        stdin=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    with PgCluster(state_dir=tmp_path_factory.mktemp("pg-state")) as cluster:
        yield cluster


@pytest.fixture
def env(tmp_path, monkeypatch):
    (tmp_path / "state").mkdir()
    values = {"DRILL_STATE_DIR": str(tmp_path / "state"), "DRILL_CAB_LOG": str(tmp_path / "cab.jsonl")}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **values}


def test_two_daemons_on_one_postgresql_store_one_schedules_and_the_other_takes_over(pg, env, tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", pg.password)
    env["PGPASSWORD"] = pg.password
    url = f"postgresql://{APP_ROLE}@{pg.primary.host}:{pg.primary.port}/{APP_DATABASE}"
    write_plan(tmp_path / "plans", "sched-pg")
    args = ["--plans", str(tmp_path / "plans"), "--store", url, "--poll", "1", "--out", str(tmp_path / "out")]
    first = daemon(args, env, tmp_path / "first.log")
    second = None
    try:
        _, ledger = open_store(url)
        holder = lambda: (ledger.leader() or {}).get("holder", "")  # noqa: E731
        assert poll(holder, until=lambda h: h.endswith(f":{first.pid}"), timeout=60, interval=0.2).ok, (
            tmp_path / "first.log"
        ).read_text()
        jobstore, _ = open_store(url)
        next_run = jobstore.lookup_job("drill:sched-pg").next_run_time
        second = daemon(args, env, tmp_path / "second.log")
        assert poll(
            lambda: (tmp_path / "second.log").read_text(), until=lambda t: "standby" in t, timeout=60, interval=0.2
        ).ok
        assert holder().endswith(f":{first.pid}")  # the standby does not schedule

        first.send_signal(signal.SIGKILL)  # the active daemon dies
        killed = time.monotonic()
        took_over = poll(holder, until=lambda h: h.endswith(f":{second.pid}"), timeout=60, interval=0.1)
        takeover_s = time.monotonic() - killed
        print(f"takeover after the leader was killed: {takeover_s:.1f} s")
        assert took_over.ok, (tmp_path / "second.log").read_text()
        assert takeover_s < 30
        assert jobstore.lookup_job("drill:sched-pg").next_run_time == next_run  # the calendar kept
        assert "schedules now" in (tmp_path / "second.log").read_text()

        status = drill("schedule", "status", "--plans", str(tmp_path / "plans"), "--store", url, "--json", env=env)
        report = json.loads(status.stdout)
        assert status.returncode == 1  # no domain has a passing drill on record
        assert report["leader"]["alive"] and report["leader"]["holder"].endswith(f":{second.pid}")
        assert any("HA domain database" in a for a in report["alerts"])
        assert not any("no schedule daemon" in a for a in report["alerts"])
        assert url.split("@")[1] in (tmp_path / "second.log").read_text()
        assert pg.password not in (tmp_path / "second.log").read_text()
    finally:
        stop(first)
        if second is not None:
            stop(second)


def test_the_ledger_on_postgresql_lets_one_claim_of_a_scheduled_time_through(pg, monkeypatch):
    import datetime as dt

    monkeypatch.setenv("PGPASSWORD", pg.password)
    url = f"postgresql://{APP_ROLE}@{pg.primary.host}:{pg.primary.port}/{APP_DATABASE}"
    _, one = open_store(url)
    _, other = open_store(url)
    when = dt.datetime(2027, 1, 1, 6, tzinfo=dt.UTC)
    assert one.claim("claim-test", when, "calendar") is True
    assert other.claim("claim-test", when, "calendar") is False


def test_a_trigger_through_the_store_runs_a_real_drill_with_its_reports_and_cab_entry(env, tmp_path):
    plans = tmp_path / "plans"
    write_plan(plans, "sched-e2e")
    store = f"sqlite:///{tmp_path / 'schedule.sqlite'}"
    common = ["--plans", str(plans), "--store", store]
    process = daemon([*common, "--poll", "0.5", "--out", str(tmp_path / "out")], env, tmp_path / "daemon.log")
    try:
        listed = drill("schedule", "list", *common, "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        [job] = [j for j in json.loads(listed.stdout)["jobs"] if j["drill"] == "sched-e2e"]
        assert job["next_run_utc"] and job["next_run_local"]
        ran = drill("schedule", "trigger", "sched-e2e", *common, "--wait", "--timeout", "240", env=env, timeout=300)
        assert ran.returncode == 0, (ran.stdout, ran.stderr, (tmp_path / "daemon.log").read_text())
        row = json.loads(ran.stdout)
        out = Path(row["out_dir"])
        assert row["status"] == "pass" and out.parent == tmp_path / "out" / "sched-e2e"
        assert (out / "report.html").exists() and (out / "results.json").exists()
        assert "verdict PASS" in (out / "drill.log").read_text()
        entries = [json.loads(line) for line in Path(env["DRILL_CAB_LOG"]).read_text().splitlines()]
        assert [(e["drill"], e["verdict"], e["ha_domain"]) for e in entries] == [("sched-e2e", "pass", "database")]
        listed = json.loads(drill("schedule", "list", *common, "--json", env=env).stdout)
        [job] = [j for j in listed["jobs"] if j["drill"] == "sched-e2e"]
        assert job["last_result"]["status"] == "pass"
        assert {j["job"] for j in listed["jobs"]} == {"drill:sched-e2e", "staleness"}
        # the drill ran on the embedded lab: a rehearsal, recorded as such, that makes no domain current
        assert entries[0]["environment"] == {"class": "lab", "name": "embedded lab"}
        status = drill("schedule", "status", *common, "--json", env=env)
        report = json.loads(status.stdout)
        assert status.returncode == 1 and all(d["stale"] for d in report["domains"])
        database = next(d for d in report["domains"] if d["domain"] == "database")
        assert database["newer_uncounted"]["drill"] == "sched-e2e" and database["newer_uncounted"]["class"] == "lab"
        # a team that counts lab runs says so, and status says it back
        counted = drill("schedule", "status", *common, "--count", "lab,staging,production", env=env)
        assert "WARNING: lab runs counted (--count lab,staging,production)" in counted.stdout
        assert "database        last passing drill: sched-e2e at" in counted.stdout and "(lab)" in counted.stdout
        report = json.loads(
            drill("schedule", "status", *common, "--json", "--count", "lab,staging,production", env=env).stdout
        )
        assert {d["domain"]: d["stale"] for d in report["domains"]}["database"] is False and report["lab_runs_counted"]
    finally:
        stop(process)
    assert process.returncode == 0


def test_on_postgresql_the_pickled_table_and_a_forged_row_are_never_run_and_the_jobs_rebuilt(
    pg, env, tmp_path, monkeypatch
):
    import datetime as dt
    import pickle

    import sqlalchemy as sa

    from harness.schedule.store import JOBS_TABLE, PICKLED_JOBS_TABLE
    from tests.schedule.test_daemon import Recorder, Running
    from tests.schedule.test_plain_store import Payload

    monkeypatch.setenv("PGPASSWORD", pg.password)
    env["PGPASSWORD"] = pg.password
    url = f"postgresql://{APP_ROLE}@{pg.primary.host}:{pg.primary.port}/{APP_DATABASE}"
    marker = tmp_path / "PWNED"
    write_plan(tmp_path / "plans", "sched-pgm")
    kept = dt.datetime(2027, 4, 1, 6, tzinfo=dt.UTC)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    open_store(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"CREATE TABLE {PICKLED_JOBS_TABLE} (id VARCHAR(191) PRIMARY KEY, "
                    f"next_run_time FLOAT, job_state BYTEA NOT NULL)"
                )
            )
            conn.execute(
                sa.text(f"INSERT INTO {PICKLED_JOBS_TABLE} VALUES (:id, :t, :state)"),
                [
                    {"id": "drill:sched-pgm", "t": kept.timestamp(), "state": pickle.dumps(Payload(marker))},
                    {
                        "id": "trigger:sched-pgm:20261201T000000000000Z",
                        "t": 1.0,
                        "state": pickle.dumps(Payload(marker)),
                    },
                ],
            )
            conn.execute(
                sa.text(
                    f"INSERT INTO {JOBS_TABLE} (id, next_run_time, kind, args, schedule, name) "
                    f"VALUES ('drill:sched-pgf', 1.0, 'drill', :args, :schedule, 'forged')"
                ),
                {
                    "args": pickle.dumps(Payload(marker), protocol=0).decode("ascii"),  # a text pickle
                    "schedule": '{"cron": "0 6 * * *"}',
                },
            )
        listed = drill("schedule", "list", "--plans", str(tmp_path / "plans"), "--store", url, env=env)
        assert listed.returncode == 2, listed.stderr
        assert (
            "job row 'drill:sched-pgf' of table drill_schedule_jobs_v2 skipped, never run: args: not JSON"
            in listed.stderr
        )
        assert f"{PICKLED_JOBS_TABLE} of an older harness (pickled jobs): it is never read" in listed.stderr
        assert not marker.exists()

        launcher = Recorder()
        daemon = Running(
            {"plans": tmp_path / "plans", "store": url, "cab": tmp_path / "cab.jsonl", "out": tmp_path / "out"},
            launcher,
        )
        daemon.stop()
        assert not marker.exists() and launcher.launches == []
        log = "\n".join(daemon.lines)
        assert "job row 'drill:sched-pgf'" in log and "never run: the row is removed" in log
        assert "dropped: 1 job(s) kept their next run time" in log
        assert "trigger:sched-pgm:20261201T000000000000Z" in log
        assert not sa.inspect(engine).has_table(PICKLED_JOBS_TABLE)
        jobstore, _ = open_store(url)
        assert jobstore.lookup_job("drill:sched-pgm").next_run_time == kept
        assert jobstore.lookup_job("drill:sched-pgf") is None and jobstore.unreadable == {}
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {PICKLED_JOBS_TABLE}"))
            conn.execute(sa.text(f"DELETE FROM {JOBS_TABLE} WHERE id IN ('drill:sched-pgm', 'drill:sched-pgf')"))
        engine.dispose()


def test_a_wrong_password_for_the_postgresql_store_is_exit_2_and_never_shown(pg, env):
    env["PGPASSWORD"] = "not-the-password-91"
    url = f"postgresql://{APP_ROLE}@{pg.primary.host}:{pg.primary.port}/{APP_DATABASE}"
    for action in ("list", "status"):
        result = drill("schedule", action, "--plans", "drills", "--store", url, env=env)
        assert result.returncode == 2, result.stderr
        assert "refuses the connection" in result.stderr and "PGPASSWORD" in result.stderr
        assert "not-the-password-91" not in result.stdout + result.stderr and "Traceback" not in result.stderr
