"""The schedule's store holds plain data, never code, and a store that cannot be used is one line
with a documented exit code: a forged or pickled job row is named and never run (list, status,
the daemon), the old pickled table is rebuilt from the plans without being unpickled, a store
that does not answer is exit 4 within a connect timeout, a file that is not a database exit 2,
an unreadable heartbeat an alert, a bad flag value exit 2, a mistyped URL never shows its password."""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from harness.cli import main
from harness.schedule.daemon import add_trigger, open_store
from harness.schedule.store import JOBS_TABLE, PICKLED_JOBS_TABLE
from tests.schedule.test_daemon import Recorder, Running, now, write_plan
from tests.support import TcpServer

ROOT = Path(__file__).resolve().parents[2]
QUARTERLY = "0 6 1 1,4,7,10 *"


class Payload:
    """What an attacker with write access to the store puts in a job row: unpickling it runs a
    command that writes the file named."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"id > {self.marker}",))


def drill(capsys, *argv: str) -> tuple[int, str, str]:
    """`drill ARGV` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse refusing a flag value
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(ROOT)
    (tmp_path / "state").mkdir()
    return {
        "plans": tmp_path / "plans",
        "store": f"sqlite:///{tmp_path / 'schedule.sqlite'}",
        "db": tmp_path / "schedule.sqlite",
        "cab": tmp_path / "cab.jsonl",
        "out": tmp_path / "out",
        "marker": tmp_path / "PWNED",
    }


def old_store(db: Path, rows: list[tuple[str, float | None, bytes]]) -> None:
    """A store as APScheduler's SQLAlchemyJobStore of an older harness left it (its very schema)."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"CREATE TABLE {PICKLED_JOBS_TABLE} (id VARCHAR(191) NOT NULL PRIMARY KEY, "
            f"next_run_time FLOAT, job_state BLOB NOT NULL)"
        )
        conn.executemany(f"INSERT INTO {PICKLED_JOBS_TABLE} VALUES (?, ?, ?)", rows)


def put_rows(store: str, rows: list[dict]) -> None:
    """Rows written straight into the job table, as anyone with write access to the store could."""
    engine = sa.create_engine(store)
    with engine.begin() as conn:
        for row in rows:
            conn.execute(
                sa.text(
                    f"INSERT INTO {JOBS_TABLE} (id, next_run_time, kind, args, schedule, name) "
                    f"VALUES (:id, :next_run_time, :kind, :args, :schedule, :name)"
                ),
                row,
            )
    engine.dispose()


def table_names(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_pickled_table_of_an_older_harness_is_never_unpickled_and_is_rebuilt_from_the_plans(env, capsys):
    write_plan(env["plans"], "sched-m")
    kept = dt.datetime(2027, 4, 1, 6, tzinfo=dt.UTC)  # a fire time of QUARTERLY, not the next
    evil = pickle.dumps(Payload(env["marker"]))
    old_store(
        env["db"],
        [
            ("drill:sched-m", kept.timestamp(), evil),
            ("trigger:sched-m:20261201T000000000000Z", 1.0, evil),
            ("staleness", 1.0, evil),
        ],
    )
    common = ["--plans", str(env["plans"]), "--store", env["store"], "--cab-log", str(env["cab"])]

    code, out, err = drill(capsys, "schedule", "list", *common)
    assert code == 0, err
    assert f"job table {PICKLED_JOBS_TABLE} of an older harness (pickled jobs): it is never read" in err
    assert "[not in the store yet" in out
    code, _, err = drill(capsys, "schedule", "status", *common)
    assert code == 1 and "never read" in err  # 1: no domain has a passing drill, no daemon
    assert not env["marker"].exists()

    launcher = Recorder()
    daemon = Running(env, launcher)
    daemon.stop()
    assert not env["marker"].exists() and launcher.launches == []
    log = "\n".join(daemon.lines)
    assert (
        f"{PICKLED_JOBS_TABLE} of an older harness (pickled jobs) was rebuilt from the plans without "
        f"unpickling it, and dropped: 1 job(s) kept their next run time" in log
    )
    assert "1 other row(s) rebuilt afresh or gone with their plan: staleness" in log  # 1970: no fire time of it
    assert "queued trigger(s) of the old table dropped, never run" in log
    assert "trigger:sched-m:20261201T000000000000Z" in log
    assert PICKLED_JOBS_TABLE not in table_names(env["db"])
    jobstore, _ = open_store(env["store"])
    assert jobstore.lookup_job("drill:sched-m").next_run_time == kept  # the calendar kept, from the plain column
    assert {job.id for job in jobstore.get_all_jobs()} == {"drill:sched-m", "staleness"}
    code, out, err = drill(capsys, "schedule", "list", *common)
    assert code == 0 and "never read" not in err and "2027-04-01T06:00:00+00:00" in out


BAD_ROWS = [  # (id, kind, args, schedule, next_run_time, what the message says)
    ("drill:sched-p", "drill", None, '{"cron": "0 6 1 1,4,7,10 *"}', 1.0, "args is bytes"),  # the pickle
    ("drill:sched-q", "drill", '["sched-q"', '{"cron": "0 6 1 1,4,7,10 *"}', 1.0, "args: not JSON"),
    ("run-this", "shell", '["id"]', '{"cron": "* * * * *"}', 1.0, "kind 'shell' is not one of"),
    ("drill:sched-r", "drill", '["sched-r"]', '{"cron": "61 6 * * *"}', 1.0, "is not a 5-field cron"),
    ("drill:sched-s", "drill", '["sched-s"]', '{"cron": "0 0 31 2 *"}', 1.0, "never fires"),
    ("trigger:sched-t:20261201T000000000000Z", "trigger", '["sched-t"]', '{"date": "soon"}', 1.0, "is not an ISO time"),
    ("drill:sched-u", "drill", '["other"]', '{"cron": "0 6 * * *"}', 1.0, "the id does not match"),
    ("drill:sched-v", "drill", '["sched-v"]', '{"cron": "0 6 * * *"}', "tomorrow", "is not a UTC timestamp"),
]


def test_a_job_row_that_is_not_plain_data_is_named_and_never_run_by_list_status_or_the_daemon(env, capsys):
    write_plan(env["plans"], "sched-p")
    common = ["--plans", str(env["plans"]), "--store", env["store"], "--cab-log", str(env["cab"])]
    open_store(env["store"])  # a store of this harness, its tables made
    evil = pickle.dumps(Payload(env["marker"]))
    put_rows(
        env["store"],
        [
            {
                "id": job_id,
                "kind": kind,
                "args": evil if args is None else args,
                "schedule": schedule,
                "name": "forged",
                "next_run_time": when,
            }
            for job_id, kind, args, schedule, when, _ in BAD_ROWS
        ],
    )

    for action in ("list", "status"):
        code, _, err = drill(capsys, "schedule", action, *common)
        assert code == 2, (action, err)
        for job_id, *_, says in BAD_ROWS:
            [line] = [line for line in err.splitlines() if f"job row '{job_id}' " in line]
            assert says in line and "skipped, never run" in line, line
        assert "Traceback" not in err
    code, out, _ = drill(capsys, "schedule", "list", *common, "--json")
    assert code == 2 and {r["job"] for r in json.loads(out)["unreadable_rows"]} == {r[0] for r in BAD_ROWS}
    assert not env["marker"].exists()

    launcher = Recorder()
    daemon = Running(env, launcher)  # the rows are due (next run 1970): none may run
    assert launcher.launches == []
    daemon.stop()
    assert not env["marker"].exists() and launcher.launches == []
    for job_id, *_, says in BAD_ROWS:
        [line] = [line for line in daemon.lines if f"job row '{job_id}' " in line]
        assert says in line and "never run: the row is removed" in line, line
    jobstore, ledger = open_store(env["store"])
    assert {job.id for job in jobstore.get_all_jobs()} == {"drill:sched-p", "staleness"}  # rebuilt from the plan
    assert jobstore.unreadable == {} and ledger.runs() == []
    assert drill(capsys, "schedule", "list", *common)[0] == 0


def test_jobs_are_stored_as_plain_json_and_read_back(env):
    jobstore, _ = open_store(env["store"])
    when = now()
    job_id = add_trigger(jobstore, "sched-w", when)
    with sqlite3.connect(env["db"]) as conn:
        [row] = conn.execute(f"SELECT id, next_run_time, kind, args, schedule, name FROM {JOBS_TABLE}").fetchall()
    assert row == (
        job_id,
        when.timestamp(),
        "trigger",
        '["sched-w"]',
        json.dumps({"date": when.isoformat()}),
        "sched-w (triggered)",
    )
    job = jobstore.lookup_job(job_id)
    assert job.args == ("trigger", "sched-w") and job.next_run_time == when and job.trigger.run_date == when
    assert job.func.__module__ == "harness.schedule.jobstore" and job.func.__name__ == "fire"


@pytest.fixture
def tarpit():
    """A PostgreSQL port that accepts connections and never answers; server.accepted counts them."""
    accepted: list[socket.socket] = []

    def hold(sock: socket.socket) -> None:
        accepted.append(sock)
        while sock.recv(65536):
            pass

    with TcpServer(hold) as server:
        server.accepted = accepted
        yield server


def test_a_store_that_never_answers_is_exit_4_within_the_connect_timeout_for_every_action(env, tarpit, tmp_path):
    write_plan(env["plans"], "sched-x")
    url = f"postgresql://drill:SECRET-7@127.0.0.1:{tarpit.port}/drill"
    common = ["--plans", str(env["plans"]), "--store", url]
    actions = {
        "list": ["list"],
        "status": ["status"],
        "trigger": ["trigger", "sched-x"],
        "run": ["run", "--out", str(tmp_path / "out")],
    }
    started = time.monotonic()
    children = {
        name: subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "schedule", *argv, *common],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "DRILL_STATE_DIR": str(tmp_path / "state")},
        )
        for name, argv in actions.items()
    }
    try:
        results = {name: (child.wait(60), *child.communicate()) for name, child in children.items()}
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    elapsed = time.monotonic() - started
    print(f"four actions against a store that never answers, at once: {elapsed:.1f} s")
    for name, (code, out, err) in results.items():
        assert code == 4, (name, out, err)
        assert "does not answer" in err and f"127.0.0.1:{tarpit.port}" in err and "Traceback" not in err, (name, err)
        assert "SECRET-7" not in out + err
    # one connection attempt per action, given up after the 5 s connect timeout: the old code tried
    # 5 times (26 s). Counted, not timed: four children starting at once on a loaded machine took 30 s
    assert len(tarpit.accepted) == len(actions), f"{len(tarpit.accepted)} connections for {len(actions)} actions"
    assert elapsed < 90  # generous: each child's own wait is bounded by child.wait(60) above


def sqlite_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.sqlite"
    if kind == "text":
        path.write_text("reports and notes, not a database\n")
    elif kind == "truncated":
        good = tmp_path / "good.sqlite"
        open_store(f"sqlite:///{good}")
        path.write_bytes(good.read_bytes()[:5000])
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "under-a-file":
        (tmp_path / "plain").write_text("x")
        path = tmp_path / "plain" / "store.sqlite"
    return path


@pytest.mark.parametrize(
    "kind, says",
    [
        ("text", "not a usable SQLite job store (it does not start as a SQLite database does)"),
        ("truncated", "not a usable SQLite job store (database disk image is malformed)"),
        ("folder", "is a folder"),
        ("fifo", "is a FIFO"),
        ("under-a-file", "cannot make the store's folder"),
    ],
)
def test_a_store_file_that_is_not_a_sqlite_database_is_exit_2_naming_it(env, tmp_path, capsys, kind, says):
    path = sqlite_file(tmp_path, kind)
    write_plan(env["plans"], "sched-z")
    for action in ("list", "status", "run"):
        code, _, err = drill(capsys, "schedule", action, "--plans", str(env["plans"]), "--store", f"sqlite:///{path}")
        assert code == 2, (action, err)
        [line] = err.splitlines()
        assert str(path) in line and says in line and "sqlite:///FILE" in line, line


@pytest.mark.parametrize(
    "heartbeat, says",
    [
        ("not a date", "'not a date' is not a UTC time"),
        ("2026-12-01T00:00:00", "'2026-12-01T00:00:00' is not a UTC time"),  # no offset
        (5, "'5' is not a UTC time"),  # SQLite keeps an integer as given
        ("2999-01-01T00:00:00+00:00", "2999-01-01T00:00:00+00:00 is in the future"),
    ],
)
def test_a_leader_heartbeat_that_is_not_a_time_is_an_alert_not_a_traceback(env, capsys, heartbeat, says):
    write_plan(env["plans"], "sched-y")
    _, ledger = open_store(env["store"])
    ledger.heartbeat("elsewhere:1", now())
    with sqlite3.connect(env["db"]) as conn:
        conn.execute("UPDATE drill_schedule_leader SET heartbeat = ?", (heartbeat,))
    common = ["--plans", str(env["plans"]), "--store", env["store"], "--cab-log", str(env["cab"])]
    code, out, err = drill(capsys, "schedule", "status", *common)
    assert code == 1, err
    assert f"heartbeat unreadable ({says}" in out
    assert f"ALERT: the leader's heartbeat in the store is unreadable ({says}" in out
    code, out, _ = drill(capsys, "schedule", "status", *common, "--json")
    leader = json.loads(out)["leader"]
    assert code == 1 and leader["alive"] is False and says in leader["heartbeat_unreadable"]
    code, _, err = drill(
        capsys, "schedule", "trigger", "sched-y", "--plans", str(env["plans"]), "--store", env["store"]
    )
    assert code == 0 and "the leader's heartbeat is unreadable" in err


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["run", "--max-parallel", "0"], "--max-parallel"),
        (["run", "--max-parallel", "-1"], "--max-parallel"),
        (["run", "--poll", "0"], "--poll"),
        (["run", "--poll", "-1"], "--poll"),
        (["run", "--poll", "nan"], "--poll"),
        (["run", "--grace-hours", "-1"], "--grace-hours"),
        (["run", "--grace-hours", "nan"], "--grace-hours"),
        (["status", "--stale-days", "nan"], "--stale-days"),
        (["list", "--stale-days", "-5"], "--stale-days"),
        (["list", "--stale-days", "1e300"], "--stale-days"),
        (["trigger", "x", "--wait", "--timeout", "-1"], "--timeout"),
        (["trigger", "x", "--wait", "--timeout", "0"], "--timeout"),
        (["trigger", "x", "--wait", "--timeout", "nan"], "--timeout"),
        (["trigger", "x", "--wait", "--timeout", "inf"], "--timeout"),
    ],
)
def test_a_flag_value_that_cannot_work_is_exit_2_naming_the_flag(env, capsys, argv, flag):
    code, _, err = drill(capsys, "schedule", *argv, "--plans", str(env["plans"]), "--store", env["store"])
    assert code == 2
    assert f"error: argument {flag}: '{argv[-1]}': give " in err
    assert not env["db"].exists()  # refused before anything is opened


@pytest.mark.parametrize(
    "url",
    [
        "postgresql:/drill:SECRET-7@db.example/drill",
        "postgresql//drill:SECRET-7@db.example/drill",
        "postgresql://drill:SECRET-7@db.example:five/drill",
        "postgresql://drill:SECRET-7@[::1/drill",
        "drill:SECRET-7@db.example/drill",
        "postgres://drill:SECRET-7@db.example/drill",
        "postgresql:/drill:SECRET-7",
        "postgresql://drill:SECRET-7@127.0.0.1:1/drill",  # refused at once: exit 4
        "postgresql://drill@127.0.0.1:1/drill?password=SECRET-7",
    ],
)
def test_a_mistyped_store_url_never_shows_its_password(env, capsys, url):
    for action in ("list", "status"):
        code, out, err = drill(capsys, "schedule", action, "--plans", str(env["plans"]), "--store", url)
        assert code in (2, 4) and len(err.splitlines()) == 1, err
        assert "SECRET-7" not in out + err
        assert "***" in err or "postgresql:..." in err
