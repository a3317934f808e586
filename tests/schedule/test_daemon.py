"""The daemon on a real APScheduler and a real SQLite job store, with the launcher of `drill run`
replaced by a recorder (what is under test is when runs start, not the drills: the end-to-end
test in test_schedule_cli.py runs a real one)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from harness.cab.ledger import read_cab_entries, verify_cab_log
from harness.schedule.daemon import Daemon, add_trigger, open_store
from harness.wait import poll

UTC = dt.UTC
ROOT = Path(__file__).resolve().parents[2]
QUARTERLY = "0 6 1 1,4,7,10 *"


def write_plan(folder: Path, drill: str, schedule: str = QUARTERLY, blackout: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{drill}.yaml"
    path.write_text(f"""drill: {drill}
title: {drill}
ha_domain: database
lab: embedded
scenarios: [scenarios/database/primary_failover.feature]
schedule: "{schedule}"
{blackout}""")
    return path


class Recorder:
    """Stands in for the `drill run` child: records each launch; optionally blocks until released."""

    def __init__(self, block: bool = False):
        self.launches: list[tuple[str, Path]] = []
        self.running = 0
        self.most_at_once = 0
        self.release = threading.Event()
        if not block:
            self.release.set()
        self.lock = threading.Lock()

    def __call__(self, launch) -> int:
        with self.lock:
            self.launches.append((launch.plan.drill, launch.out_dir))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.release.wait(60)
        with self.lock:
            self.running -= 1
        return 0


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    return {
        "plans": tmp_path / "plans",
        "store": f"sqlite:///{tmp_path / 'schedule.sqlite'}",
        "cab": tmp_path / "cab.jsonl",
        "out": tmp_path / "out",
    }


class Running:
    """A daemon serving in a thread; `stop()` ends it (like SIGTERM)."""

    def __init__(self, env, launcher, **kwargs):
        self.lines: list[str] = []
        self.daemon = Daemon(
            env["plans"],
            store=env["store"],
            cab_log=env["cab"],
            out_root=env["out"],
            root=ROOT,
            poll_s=0.2,
            launcher=launcher,
            log=self.lines.append,
            **kwargs,
        )
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.daemon.serve, args=(self.stop_event,), daemon=True)
        self.thread.start()
        assert poll(lambda: self.daemon.scheduler is not None, until=bool, timeout=30, interval=0.05).ok, self.lines

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def stored_job(env, job_id):
    jobstore, _ = open_store(env["store"])
    return jobstore.lookup_job(job_id)


def down_over(env, job_id: str, when: dt.datetime) -> None:
    """As if no daemon ran when the job last fired at `when`: its stored next run time set back."""
    jobstore, _ = open_store(env["store"])
    job = jobstore.lookup_job(job_id)
    job._modify(next_run_time=when)
    jobstore.update_job(job)


def now() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


def test_the_calendar_survives_a_restart_and_a_fire_missed_while_down_runs_once_late(env):
    write_plan(env["plans"], "sched-a")
    launcher = Recorder()
    first = Running(env, launcher)
    next_run = stored_job(env, "drill:sched-a").next_run_time
    assert next_run.month in (1, 4, 7, 10) and next_run.day == 1 and next_run.hour == 6
    first.stop()

    fired = now() - dt.timedelta(minutes=2)
    down_over(env, "drill:sched-a", fired)
    second = Running(env, launcher)
    _, ledger = open_store(env["store"])
    assert poll(
        lambda: [r for r in ledger.runs("sched-a") if r["status"] == "pass"], until=bool, timeout=30, interval=0.1
    ).ok, second.lines
    run = ledger.runs("sched-a")[0]
    assert run["scheduled_for"] == fired.isoformat() and run["late_s"] >= 110
    assert launcher.launches == [("sched-a", env["out"] / "sched-a" / fired.strftime("%Y%m%dT%H%M%SZ"))]
    late = [e for e in read_cab_entries(env["cab"]) if e.get("event") == "late"]
    assert len(late) == 1 and late[0]["scheduled_for"] == fired.isoformat() and late[0]["late_s"] >= 110
    # the calendar moved on to the next quarter, and that time is not run a second time
    assert stored_job(env, "drill:sched-a").next_run_time == next_run
    assert second.daemon.scheduled("sched-a", [fired]) == "duplicate"
    second.stop()
    assert len(launcher.launches) == 1
    assert verify_cab_log(env["cab"]) == (True, None)


def test_a_fire_beyond_the_grace_is_recorded_missed_and_not_run(env):
    write_plan(env["plans"], "sched-b")
    launcher = Recorder()
    Running(env, launcher).stop()
    fired = now() - dt.timedelta(days=58)
    down_over(env, "drill:sched-b", fired)
    daemon = Running(env, launcher, grace_s=6 * 3600)
    _, ledger = open_store(env["store"])
    assert poll(lambda: ledger.runs("sched-b"), until=bool, timeout=30, interval=0.1).ok, daemon.lines
    # the job's thread claims the run, then appends the CAB record, then logs the line: wait for the last
    said = poll(lambda: any("MISSED" in line for line in daemon.lines), until=bool, timeout=30, interval=0.05)
    daemon.stop()
    assert said.ok, daemon.lines
    [run] = ledger.runs("sched-b")
    assert run["status"] == "missed" and "grace of 6 h" in run["reason"]
    assert launcher.launches == []
    [missed] = [e for e in read_cab_entries(env["cab"]) if e.get("kind") == "schedule"]
    assert missed["event"] == "missed" and missed["scheduled_for"] == fired.isoformat()


def test_a_run_in_a_blackout_window_is_skipped_with_the_reason_in_the_cab_log(env):
    start, end = now() - dt.timedelta(days=1), now() + dt.timedelta(days=1)
    write_plan(
        env["plans"],
        "sched-c",
        blackout=f"blackout:\n  - {{start: '{start.isoformat()}', "
        f"end: '{end.isoformat()}', reason: year-end change freeze}}\n",
    )
    launcher = Recorder()
    Running(env, launcher).stop()
    fired = now() - dt.timedelta(seconds=30)
    down_over(env, "drill:sched-c", fired)
    daemon = Running(env, launcher)
    _, ledger = open_store(env["store"])
    assert poll(lambda: ledger.runs("sched-c"), until=bool, timeout=30, interval=0.1).ok, daemon.lines
    daemon.stop()
    [run] = ledger.runs("sched-c")
    assert run["status"] == "skipped" and "year-end change freeze" in run["reason"]
    assert launcher.launches == []
    [skipped] = [e for e in read_cab_entries(env["cab"]) if e.get("kind") == "schedule"]
    assert skipped["event"] == "skipped" and "year-end change freeze" in skipped["reason"]


def test_a_calendar_file_of_blackouts_holds_every_plan_and_a_bad_one_is_refused(env, tmp_path):
    from harness.errors import PlanError

    write_plan(env["plans"], "sched-i")
    calendar = tmp_path / "freezes.yaml"
    calendar.write_text(
        f"blackout:\n  - {{start: '{(now() - dt.timedelta(hours=1)).isoformat()}', "
        f"end: '{(now() + dt.timedelta(hours=1)).isoformat()}', reason: release freeze R42}}\n"
    )
    launcher = Recorder()
    Running(env, launcher, blackout_file=calendar).stop()
    down_over(env, "drill:sched-i", now() - dt.timedelta(seconds=10))
    daemon = Running(env, launcher, blackout_file=calendar)
    _, ledger = open_store(env["store"])
    assert poll(lambda: ledger.runs("sched-i"), until=bool, timeout=30, interval=0.1).ok, daemon.lines
    daemon.stop()
    assert ledger.runs("sched-i")[0]["status"] == "skipped" and launcher.launches == []
    assert "release freeze R42" in ledger.runs("sched-i")[0]["reason"]
    calendar.write_text("blackout: [{start: 2027-01-01}]\n")
    with pytest.raises(PlanError, match=r"freezes.yaml: key 'blackout.0.'"):
        Daemon(env["plans"], store=env["store"], blackout_file=calendar)


def test_triggers_through_the_store_run_one_at_a_time_per_host(env):
    write_plan(env["plans"], "sched-d")
    write_plan(env["plans"], "sched-e")
    launcher = Recorder(block=True)
    daemon = Running(env, launcher)
    jobstore, ledger = open_store(env["store"])  # as `drill schedule trigger` does, from elsewhere
    add_trigger(jobstore, "sched-d", now())
    add_trigger(jobstore, "sched-e", now() + dt.timedelta(microseconds=1))
    assert poll(lambda: launcher.launches, until=bool, timeout=30, interval=0.05).ok, daemon.lines
    assert poll(
        lambda: [line for line in daemon.lines if " waits: 1 drill(s) already run" in line],
        until=bool,
        timeout=30,
        interval=0.05,
    ).ok, daemon.lines
    assert len(launcher.launches) == 1  # the second waits for the slot
    launcher.release.set()
    assert poll(lambda: len(launcher.launches), until=lambda n: n == 2, timeout=30, interval=0.05).ok
    assert poll(
        lambda: [r["status"] for r in ledger.runs()], until=lambda s: s == ["pass", "pass"], timeout=30, interval=0.05
    ).ok
    daemon.stop()
    assert launcher.most_at_once == 1
    assert sorted(d for d, _ in launcher.launches) == ["sched-d", "sched-e"]
    assert [r["kind"] for r in ledger.runs()] == ["trigger", "trigger"]


def test_a_job_whose_plan_is_gone_is_removed_and_a_changed_cron_rescheduled(env):
    write_plan(env["plans"], "sched-f")
    write_plan(env["plans"], "sched-g")
    Running(env, Recorder()).stop()
    (env["plans"] / "sched-f.yaml").unlink()
    write_plan(env["plans"], "sched-g", schedule="0 6 15 * *")
    daemon = Running(env, Recorder())
    daemon.stop()
    assert stored_job(env, "drill:sched-f") is None
    assert stored_job(env, "drill:sched-g").next_run_time.day == 15


def test_a_store_that_stops_answering_is_retried_not_a_crash(env):
    import sqlalchemy as sa

    write_plan(env["plans"], "sched-h")
    daemon = Running(env, Recorder())
    real, failures = daemon.daemon.ledger.heartbeat, []

    def flaky(*args):
        if len(failures) < 3:
            failures.append(1)
            raise sa.exc.OperationalError("UPDATE drill_schedule_leader", {}, Exception("database is locked"))
        return real(*args)

    daemon.daemon.ledger.heartbeat = flaky
    assert poll(
        lambda: daemon.lines,
        until=lambda lines: any("answers again" in line for line in lines),
        timeout=30,
        interval=0.05,
    ).ok, daemon.lines
    assert sum("does not answer (OperationalError)" in line for line in daemon.lines) == 1
    assert daemon.thread.is_alive() and daemon.daemon.scheduler is not None
    daemon.stop()


def test_two_processes_opening_a_new_store_at_once_both_get_it(tmp_path):
    """A daemon and `drill schedule list` on a new store: one's CREATE TABLE loses the race and
    fails "already exists"; it is tried again and finds the table."""
    import sqlalchemy as sa

    from harness.schedule.store import tolerate_create_race

    calls = []

    def create():
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError(
                "CREATE TABLE drill_schedule_jobs", {}, Exception("table drill_schedule_jobs already exists")
            )

    tolerate_create_race(create)
    assert len(calls) == 2
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    results = []
    threads = [threading.Thread(target=lambda: results.append(open_store(url)[0].get_all_jobs())) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [[]] * 6
