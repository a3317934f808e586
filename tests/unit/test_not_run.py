"""A run that could not act is not a verdict about the deployment (issue 24, section 5).

A hook's failure is typed (the plan's credentials or keys: exit 2; unreachable or refused: exit
4); the fault journal turns it into FaultNotInjected, records "not_injected" and never "heal" or
"heal_failed" for a fault that never happened; the scenario is not run (no gate, no figure); the
run's exit code is 2 or 4 and its CAB line says "not run", which no reader counts as a drill's
pass or fail. The hooks are called over real sockets (a local HTTP server on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import io
import sys
from pathlib import Path

import pytest

from harness import exits
from harness.faults import FaultJournal
from harness.faults.refused import FaultNotInjected, could_not_act
from harness.lab import hooks
from harness.lab.hooks import Hook, HookError
from harness.model import FaultSpec
from harness.net import free_port
from harness.plan import load_plan
from harness.progress import Progress
from tests.support import JsonHandler, http_server

ROOT = Path(__file__).resolve().parents[2]


class Answers(JsonHandler):
    """/<status>: answers that status (a runbook endpoint that refuses, or fails)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = int(self.path.strip("/").split("/")[0])
        self.send_json(status, {"error": "no"} if status >= 400 else {"killed": "pg-a"})


@pytest.fixture(scope="module")
def runbook():
    with http_server(Answers) as url:
        yield url


def failure(hook: Hook) -> HookError:
    with pytest.raises(HookError) as err:
        hook.run(node="pg-a")
    return err.value


@pytest.mark.parametrize(
    "status, kind, acted, code",
    [
        (401, hooks.CREDENTIALS, False, exits.INVALID),
        (403, hooks.CREDENTIALS, False, exits.INVALID),
        (404, hooks.PLAN, False, exits.INVALID),
        (409, hooks.REFUSED, False, exits.UNREACHABLE),
        (503, hooks.UNREACHABLE, True, exits.UNREACHABLE),
    ],
)
def test_an_http_hook_failure_says_whose_it_is_and_whether_it_may_have_acted(runbook, status, kind, acted, code):
    error = failure(Hook("kill_database_primary", url=f"{runbook}/{status}", timeout_s=5))
    assert (error.kind, error.acted) == (kind, acted) and f"answered {status}" in str(error)
    assert could_not_act(error) == (code, acted)


def test_a_hook_that_cannot_be_called_is_the_plan_or_an_unreachable_target(monkeypatch, tmp_path):
    closed = failure(Hook("kill", url=f"http://127.0.0.1:{free_port()}/kill", timeout_s=5))
    assert (closed.kind, closed.acted) == (hooks.UNREACHABLE, False)  # nothing was asked
    assert could_not_act(closed) == (exits.UNREACHABLE, False)
    monkeypatch.delenv("DRILL_NO_SUCH_TOKEN", raising=False)
    unset = failure(Hook("kill", url="http://127.0.0.1:9/kill", token_env="DRILL_NO_SUCH_TOKEN"))
    assert unset.kind == hooks.CREDENTIALS and could_not_act(unset) == (exits.INVALID, False)
    missing = failure(Hook("kill", url="http://127.0.0.1:9/kill", token_file=str(tmp_path / "none")))
    assert missing.kind == hooks.CREDENTIALS and could_not_act(missing)[0] == exits.INVALID
    program = failure(Hook("kill", command=(str(tmp_path / "no-such-program"),)))
    assert program.kind == hooks.PLAN and could_not_act(program) == (exits.INVALID, False)
    exited = failure(Hook("kill", command=(sys.executable, "-c", "raise SystemExit(3)")))
    assert (exited.kind, exited.acted) == (hooks.REFUSED, True) and could_not_act(exited)[0] == exits.UNREACHABLE


class HookLab:
    """The part of a lab the database kill acts through (DatabaseNodes), its kill a real runbook hook (as the
    external lab's is); its restore does what the external lab's does when no failover happened."""

    toxiproxy = None  # no links: the kill acts through its hook

    def __init__(self, url: str):
        self.hook = Hook("kill_database_primary", url=url, timeout_s=5)
        self.restored: list[str] = []

    def database_primary(self) -> str:
        return "pg-a"

    def kill_database_node(self, name: str) -> None:
        self.hook.run(node=name)

    def restore_database_node(self, name: str) -> None:
        self.restored.append(name)
        raise RuntimeError(f"no failover happened: the platform must restore {name}")

    # the rest of DatabaseNodes, the protocol the kill acts through: never asked by it
    def node_query(self, name: str, statement: str, params=None) -> list[tuple]:
        raise AssertionError("the kill does not query a node")

    def replica_caught_up(self, name: str) -> bool:
        raise AssertionError("the kill does not ask about replication")

    def replication_proxy_name(self, replica: str) -> str:
        raise AssertionError("the kill does not cut replication")


def journal_for(lab) -> tuple[FaultJournal, list[tuple[str, str, dict]]]:
    events: list[tuple[str, str, dict]] = []

    class Event:
        def __init__(self, t):
            self.t = t

    def record(kind, name, **detail):
        events.append((kind, name, detail))
        return Event(float(len(events)))

    return FaultJournal(lab, record), events


def test_a_kill_the_hook_refused_is_not_injected_and_never_said_healed_or_heal_failed(runbook):
    lab = HookLab(f"{runbook}/401")
    journal, events = journal_for(lab)
    with pytest.raises(FaultNotInjected) as err:
        journal.inject(FaultSpec("database_primary_kill", "database-primary"), "kill-primary:pg-a")
    refused = err.value
    assert refused.exit_code == exits.INVALID and refused.label == "kill-primary:pg-a" and not refused.acted
    assert "answered 401" in refused.cause
    assert [kind for kind, _, _ in events] == ["inject", "not_injected"]  # no heal, no heal_failed
    assert events[1][2]["exit_code"] == exits.INVALID and "401" in events[1][2]["cause"]
    assert lab.restored == [] and journal.active() == [] and journal.injected() == []
    assert journal.heal_all() == [] and [kind for kind, _, _ in events] == ["inject", "not_injected"]
    record = journal.records(0.0)[0]
    assert "answered 401" in record.not_injected and record.heal_error is None and record.healed_s is not None


def test_a_kill_that_may_have_happened_is_healed_or_said_not_healed(runbook):
    """A 503: the runbook may have killed the node; the heal is tried and its failure said."""
    lab = HookLab(f"{runbook}/503")
    journal, events = journal_for(lab)
    with pytest.raises(FaultNotInjected) as err:
        journal.inject(FaultSpec("database_primary_kill", "database-primary"), "kill-primary:pg-a")
    assert err.value.exit_code == exits.UNREACHABLE and err.value.acted
    assert lab.restored == ["pg-a"]
    assert [kind for kind, _, _ in events] == ["inject", "not_injected", "heal_failed"]
    assert [e.label for e in journal.active()] == ["kill-primary:pg-a"]


def test_a_fault_not_injected_is_a_progress_line_of_its_own():
    stream = io.StringIO()
    progress = Progress(stream=stream, colour=False)
    progress.event("not_injected", "kill-primary:pg-a")
    assert "NOT INJECTED kill-primary:pg-a" in stream.getvalue() and "healed" not in stream.getvalue()


# ---- the scenario, the run, its exit code and its CAB line ----------------------------------------


def not_run_drill(runbook: str, status: int = 401):
    """A drill of one scenario whose kill the hook refuses, ended as the runner ends it."""
    from harness.runner.common import finish
    from harness.runner.results import drill_result
    from harness.runner.scenario import DrillRun

    plan = load_plan(ROOT / "drills" / "quarterly-database.yaml", ROOT)
    lab = HookLab(f"{runbook}/{status}")
    lab.api_url, lab.describe = "http://127.0.0.1:9", lambda: {"provider": "external"}
    run = DrillRun(drill=plan.drill, lab=lab, targets=dict(plan.targets))
    scn = run.begin("Primary killed", "scenarios/database/primary_failover.feature", ["@ha-domain:database"])
    scn.steps_total = 3
    scn.recover_on("kill-primary:pg-a", "write")
    with pytest.raises(FaultNotInjected):
        scn.inject(FaultSpec("database_primary_kill", "database-primary"), "kill-primary:pg-a")
    finish(scn)
    return plan, run, drill_result(plan, run, lab)


def test_a_scenario_that_could_not_act_is_not_run_with_no_gate_and_no_figure(runbook):
    from harness.runner import exit_code

    _, run, result = not_run_drill(runbook)
    scenario = result.scenarios[0]
    assert run.scenarios[0].not_run is not None and scenario.gates == []
    assert scenario.error.startswith("not run") and "answered 401" in scenario.error
    for key in ("rto_seconds", "rpo_seconds", "lost_writes", "availability"):
        assert key not in scenario.measurements
    assert scenario.not_applicable["rpo_seconds"].startswith("not measured: not run")
    assert result.not_run["exit_code"] == exits.INVALID and result.not_run["scenarios"] == ["Primary killed"]
    assert exit_code(result) == exits.INVALID
    assert "answered 401" in scenario.faults[0].not_injected
    _, _, unreachable = not_run_drill(runbook, 503)
    assert exit_code(unreachable) == exits.UNREACHABLE


def test_its_cab_line_says_not_run_and_the_summary_prints_no_measurement(runbook, tmp_path):
    from harness.cab.ledger import drill_record
    from harness.runner import not_run_line

    _, _, result = not_run_drill(runbook)
    record = drill_record(result, tmp_path / "report.html")
    assert record["verdict"] == "not_run" and record["not_run"].startswith("not run: ")
    assert "answered 401" in record["not_run"]
    assert [s["verdict"] for s in record["scenarios"]] == ["not_run"]
    assert record["scenarios"][0]["rpo_seconds"] is None and record["scenarios"][0]["lost_writes"] is None
    line = not_run_line(result)
    assert line.startswith("NOT RUN") and "exit 2" in line and "RPO" not in line
    from harness.report.cli import run_summary

    summary = run_summary(result, tmp_path, 2)  # drill run --json
    assert summary["not_run"]["exit_code"] == 2 and "answered 401" in summary["not_run"]["cause"]


def line(verdict: str, finished: str, scenario_verdict: str | None = None, **more) -> dict:
    """A CAB line of the database drill, on staging."""
    return {
        "kind": "drill",
        "drill": "quarterly-database",
        "ha_domain": "database",
        "verdict": verdict,
        "finished_at": finished,
        "environment": {"class": "staging", "name": "stg"},
        "environment_class": "external: stg",
        "gates": {"not_passed": []},
        "scenarios": [
            {
                "feature": "scenarios/database/primary_failover.feature",
                "matrix_row": 2,
                "verdict": scenario_verdict or verdict,
                "rto_seconds": 2.0,
                "rpo_seconds": 0.0,
            }
        ],
        **more,
    }


NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def test_no_reader_counts_a_not_run_line_as_the_domains_pass_or_fail():
    from harness.calendar import domain_states
    from harness.matrix import last_verdicts
    from harness.report.history import history
    from harness.report.since import since_last_run

    passed = line("pass", "2025-02-01T10:00:00+00:00")
    not_run = line("not_run", "2025-02-20T10:00:00+00:00", not_run="not run: hook answered 401")
    # the calendar: the last pass stays the pass; a not-run line alone leaves the domain stale
    state = {s.domain: s for s in domain_states([passed, not_run], lambda d: None, NOW)}["database"]
    assert state.last_pass == dt.datetime(2025, 2, 1, 10, tzinfo=dt.UTC) and not state.stale
    assert {s.domain: s for s in domain_states([not_run], lambda d: None, NOW)}["database"].stale
    # the history: one run, passed; the not-run one is no run of the domain at all
    database = next(d for d in history([passed, not_run], 0, NOW)["domains"] if d["domain"] == "database")
    assert (database["runs"], database["passed"]) == (1, 1)
    assert history([passed, not_run], 0, NOW)["runs"] == 1
    # the matrix: the row keeps the last verdict a drill gave it
    assert last_verdicts([passed, not_run])["primary_failover.feature"][0] == "pass"
    # since last run: the previous run is the pass
    rows = since_last_run({"ha_domain": "database", "scenarios": [{"matrix_row": {"number": 2}}]}, [passed, not_run])
    assert all(r["previous"]["finished_at"] == "2025-02-01T10:00:00+00:00" for r in rows)
