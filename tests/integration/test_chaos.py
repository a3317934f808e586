"""`drill chaos` against a running `drill lab up` lab (no lab of its own: an experiment costs
seconds), and `drill halt`, SIGTERM, the stop conditions and the fault server's own time limits
taking faults away again. Toxics are read straight from the fault server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from harness.chaos.plan import draw, load_chaos_plan
from harness.wait import poll

from .conftest import DRILL, ROOT

pytestmark = pytest.mark.integration


def env_of(staging) -> dict:
    """The environment of a `drill chaos` against the staging lab: its state dir, and the runbook
    token its external plans' hooks name."""
    from .conftest import TOKEN_ENV

    state = Path(staging["secret_files"]["pg-password"]).parent
    token = Path(staging["secret_files"]["runbook-token"]).read_text()
    return {**os.environ, "DRILL_STATE_DIR": str(state), TOKEN_ENV: token}


def toxics(staging, proxy: str = "db") -> list[dict]:
    return requests.get(f"{staging['endpoints']['toxiproxy']}/proxies/{proxy}/toxics", timeout=5).json()


def plan_file(tmp_path: Path, faults: list[dict], **extra) -> Path:
    path = tmp_path / "chaos.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "chaos": "chaos-test",
                "title": "test",
                "lab": "running",
                "blast_radius": ["db", "s3"],
                "faults": faults,
                **extra,
            }
        )
    )
    return path


def start(staging, plan: Path, tmp_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*DRILL, "chaos", str(plan), "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl"), *extra],
        cwd=ROOT,
        env=env_of(staging),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def results(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "out" / "results.json").read_text())


def gates(tmp_path: Path) -> dict[str, dict]:
    return {g["id"]: g for g in results(tmp_path)["scenarios"][0]["gates"]}


class ToxicSampler(threading.Thread):
    """Reads the db proxy's toxics every 50 ms while a run goes on: what was ever there."""

    def __init__(self, staging):
        super().__init__(daemon=True)
        self.staging, self.seen, self.done = staging, [], threading.Event()

    def run(self):
        while not self.done.wait(0.05):
            self.seen += [t["name"] for t in toxics(self.staging)]


def injected(staging, timeout: float = 60) -> bool:
    return poll(lambda: toxics(staging), until=bool, timeout=timeout, interval=0.05).ok


def healed_within(staging, timeout: float) -> float | None:
    started = time.monotonic()
    return (
        time.monotonic() - started
        if poll(lambda: toxics(staging), until=lambda t: t == [], timeout=timeout, interval=0.01).ok
        else None
    )


def test_the_latency_experiment_runs_against_the_running_lab_with_the_drills_gates_and_outputs(staging, tmp_path):
    sampler = ToxicSampler(staging)
    sampler.start()
    process = start(staging, ROOT / "drills" / "chaos" / "db-latency-200ms.yaml", tmp_path)
    out, err = process.communicate(timeout=180)
    sampler.done.set()
    sampler.join()
    assert process.returncode == 0, err
    assert "drill_latency_downstream" in sampler.seen and toxics(staging) == []
    found = gates(tmp_path)
    for gate in (
        "steady_state",
        "rto_seconds:chaos:1:latency",
        "lost_writes",
        "duplicated_writes",
        "chaos_completed",
        "probe_outage_within_tolerance",
        "error_budget_not_spent",
        "steady_state_after_heal",
        "faults_healed",
    ):
        assert found[gate]["verdict"] == "pass", (gate, found[gate])
    figures = results(tmp_path)["scenarios"][0]["measurements"]
    assert figures["rto_per_fault_s"]["chaos:1:latency"] == found["rto_seconds:chaos:1:latency"]["measured"]
    assert figures["rto_seconds"] == figures["rto_per_fault_s"]["chaos:1:latency"]
    assert "rto_seconds" not in results(tmp_path)["scenarios"][0]["not_applicable"]
    assert figures["lost_writes"] == 0 and figures["acknowledged_writes"] > 25
    assert figures["sequence"][0]["time_limit_s"] == 8.0
    for name in ("junit.xml", "report.html"):
        assert (tmp_path / "out" / name).exists()
    [entry] = [json.loads(line) for line in (tmp_path / "cab.jsonl").read_text().splitlines()]
    assert entry["drill"] == "db-latency-200ms" and entry["verdict"] == "pass"
    assert out.strip().endswith("report.html")


def test_a_dry_run_injects_nothing_and_checks_the_probes(staging, tmp_path):
    sampler = ToxicSampler(staging)
    sampler.start()
    process = start(staging, ROOT / "drills" / "chaos" / "db-latency-200ms.yaml", tmp_path, "--dry-run")
    _, err = process.communicate(timeout=180)
    sampler.done.set()
    sampler.join()
    assert process.returncode == 0, err
    assert sampler.seen == [] and len(sampler.seen) == 0
    assert "DRY RUN" in err and "latency on db (latency_ms=200) for 3 s" in err
    data = results(tmp_path)
    assert data["dry_run"] is True
    assert data["scenarios"][0]["operations"]["probe"]["ok"] >= 30
    assert "inject" not in {e["kind"] for e in data["scenarios"][0]["events"]}
    assert json.loads((tmp_path / "cab.jsonl").read_text())["dry_run"] is True


@pytest.mark.parametrize("how", ["drill halt", "SIGTERM", "SIGINT"])
def test_a_halt_heals_every_fault_at_once_and_fails_the_run_with_the_reason(staging, tmp_path, how):
    plan = plan_file(tmp_path, [{"type": "latency", "target": "db", "params": {"latency_ms": 100}, "duration": "120s"}])
    process = start(staging, plan, tmp_path)
    try:
        assert injected(staging), process.stderr.read() if process.poll() is not None else "no toxic"
        if how in ("SIGTERM", "SIGINT"):
            process.send_signal(getattr(signal, how))
            assert healed_within(staging, 30) is not None
        else:
            halted = subprocess.run(
                [*DRILL, "halt"], cwd=ROOT, env=env_of(staging), capture_output=True, text=True, timeout=60
            )
            assert halted.returncode == 0, halted.stdout + halted.stderr
            seconds = float(re.search(r"every fault healed ([\d.]+) s after the halt", halted.stdout).group(1))
            print(f"drill halt: healed {seconds:.2f} s after the signal")
            assert seconds < 10 and toxics(staging) == []
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, err
    gate = gates(tmp_path)["chaos_completed"]
    assert gate["verdict"] == "fail"
    assert ("`drill halt`" if how == "drill halt" else how) in gate["detail"]
    assert gates(tmp_path)["faults_healed"]["verdict"] == "pass"


def test_a_broken_stop_condition_halts_the_run_and_heals(staging, tmp_path):
    plan = plan_file(
        tmp_path,
        [{"type": "latency", "target": "db", "params": {"latency_ms": 3000}, "duration": "120s"}],
        stop_conditions={"probe_failing_s": 2},
    )
    process = start(staging, plan, tmp_path)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 1, err
    assert toxics(staging) == []
    found = gates(tmp_path)
    assert found["chaos_completed"]["verdict"] == "fail"
    assert "stop condition: the health probe failed" in found["chaos_completed"]["detail"]
    assert found["probe_outage_within_tolerance"]["verdict"] == "fail"
    injected_s, healed_s = (results(tmp_path)["scenarios"][0]["faults"][0][k] for k in ("injected_s", "healed_s"))
    assert healed_s - injected_s < 60  # stopped long before its 120 s


def test_a_killed_harness_leaves_nothing_behind_the_fault_server_lifts_it_by_itself(staging, tmp_path):
    plan = plan_file(tmp_path, [{"type": "latency", "target": "db", "params": {"latency_ms": 100}, "duration": "6s"}])
    data = load_chaos_plan(plan)
    assert data.steps[0].spec.time_limit_s == 11
    process = start(staging, plan, tmp_path)
    assert injected(staging)
    [toxic] = toxics(staging)
    process.kill()  # SIGKILL: no heal runs
    process.communicate(timeout=30)
    assert toxics(staging) == [toxic] or toxics(staging) == []
    assert poll(lambda: toxics(staging), until=lambda t: t == [], timeout=60, interval=0.2).ok


def test_a_seeded_game_day_runs_the_drawn_sequence_and_records_the_seed(staging, tmp_path):
    game_day = {
        "gap": ["0.5s", "1s"],
        "faults": {
            "latency": {
                "type": "latency",
                "targets": ["db", "s3"],
                "params": {"latency_ms": [20, 60]},
                "duration": ["1s", "2s"],
            }
        },
    }
    plan = plan_file(tmp_path, [], game_day=game_day)
    process = start(staging, plan, tmp_path, "--seed", "42", "--duration", "6s", "--faults", "latency")
    _, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    expected = [s.to_json() for s in draw(load_chaos_plan(plan), 42, 6.0, ["latency"])]
    figures = results(tmp_path)["scenarios"][0]["measurements"]
    assert figures["seed"] == 42 and figures["sequence"] == expected
    journal = results(tmp_path)["scenarios"][0]["faults"]
    assert [(f["type"], f["target"]) for f in journal] == [(s["type"], s["target"]) for s in expected]
    assert all(f["healed_s"] is not None for f in journal)


def test_an_external_target_without_confirm_is_a_dry_run_and_with_it_the_fault_runs(staging, tmp_path):
    from .conftest import staging_lab_config

    lab = {**staging_lab_config(staging), "blast_radius": ["db"]}
    plan = plan_file(
        tmp_path,
        [{"type": "latency", "target": "db", "params": {"latency_ms": 50}, "duration": "1s"}],
        lab=lab,
        blast_radius=["db"],
        workload="probes",
        environment={"class": "staging", "name": "staging stand-in"},
    )
    sampler = ToxicSampler(staging)
    sampler.start()
    dry = start(staging, plan, tmp_path)
    _, err = dry.communicate(timeout=180)
    sampler.done.set()
    sampler.join()
    assert dry.returncode == 0, err
    assert "DRY RUN" in err and "--confirm" in err and sampler.seen == []
    assert results(tmp_path)["dry_run"] is True

    sampler = ToxicSampler(staging)
    sampler.start()
    real = start(staging, plan, tmp_path, "--confirm", "chaos-test")
    _, err = real.communicate(timeout=180)
    sampler.done.set()
    sampler.join()
    assert real.returncode == 0, err
    assert "drill_latency_downstream" in sampler.seen and toxics(staging) == []
    assert results(tmp_path)["dry_run"] is False
    assert gates(tmp_path)["chaos_completed"]["verdict"] == "pass"
    assert "rto_seconds" in results(tmp_path)["scenarios"][0]["not_applicable"]


def test_a_fault_the_target_cannot_do_is_refused_before_anything_is_injected(staging, tmp_path):
    plan = plan_file(
        tmp_path,
        [
            {"type": "latency", "target": "s3", "params": {"latency_ms": 50}, "duration": 1},
            {"type": "api_instance_kill", "target": "az1", "duration": 1},
        ],
        blast_radius=["s3", "az1"],
    )
    process = start(staging, plan, tmp_path)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "nothing injected" in err and "no API instance processes" in err
    assert not (tmp_path / "out").exists()
