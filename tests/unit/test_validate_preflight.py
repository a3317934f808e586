"""`drill validate` makes every check `drill run` (and `drill chaos`) makes before the lab starts:
the --confirm interlock, the provider's capabilities, the blast radius. A plan it calls valid is
never then refused by run (issue 24, section 5). Nothing here reaches a target: the external
plans point at a closed port on 127.0.0.1, and every check runs before anything would call it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.net import free_port
from harness.plan import load_plan

ROOT = Path(__file__).resolve().parents[2]


def external_lab(**changes) -> dict:
    url = f"http://127.0.0.1:{free_port()}"

    def hook(path: str) -> dict:
        return {"http": {"url": f"{url}/actions/{path}", "token_env": "DRILL_TEST_RUNBOOK_TOKEN"}}

    lab = {
        "provider": "external",
        "api_url": url,
        "toxiproxy_url": url,
        "database": {
            "failover_target": "pg-b",
            "replication_proxy": "repl-pg-b",
            "nodes": {"pg-a": {"dsn": "host=127.0.0.1 port=9"}, "pg-b": {"dsn": "host=127.0.0.1 port=9"}},
        },
        "actions": {
            "kill_database_primary": hook("kill-primary"),
            "database_rebuild": hook("rebuild"),
            "database_failback": hook("failback"),
        },
        "allow_destructive": True,
        "blast_radius": ["database-primary", "repl-pg-b"],
    }
    lab.update(changes)
    return lab


def write_plan(tmp_path: Path, lab: dict, **keys) -> Path:
    plan = {
        "drill": "staging-database",
        "title": "Staging database failover",
        "ha_domain": "database",
        "environment": {"class": "staging", "name": "staging-eu"},
        "lab": lab,
        "scenarios": ["scenarios/database/primary_failover.feature"],
        **keys,
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def run_refusal(path: Path, tmp_path: Path, confirm: str | None) -> tuple[int, str]:
    """What `drill run` says of the plan before its lab starts (it never starts here)."""
    from harness.drill import run_drill

    lines: list[str] = []
    code, result = run_drill(
        load_plan(path, ROOT),
        tmp_path / "out",
        tmp_path / "cab.jsonl",
        log=lambda *a, **k: lines.append(" ".join(map(str, a))),
        confirm=confirm,
    )
    assert result is None and not (tmp_path / "out").exists()
    return code, "\n".join(lines)


def validate(capsys, *args: str) -> tuple[int, str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(autouse=True)
def at_root(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path / "state"))


def test_a_valid_external_plan_is_still_said_ok(tmp_path, capsys):
    code, out = validate(capsys, str(write_plan(tmp_path, external_lab())))
    assert code == 0, out


@pytest.mark.parametrize("case", ["blast radius", "capability", "confirm"])
def test_what_run_refuses_before_the_lab_starts_validate_refuses_too(tmp_path, capsys, case):
    lab, keys, confirm, words = external_lab(), {}, "staging-database", ""
    if case == "blast radius":  # the kill touches database-primary, outside the radius
        lab, words = external_lab(blast_radius=["repl-pg-b"]), "key 'lab.blast_radius'"
    elif case == "capability":  # the backup rows need the backup service: no provider key gives it
        keys, words = {"scenarios": "@ha-domain:backup-restore"}, "capability backups"
    else:
        confirm, words = "another-drill", "--confirm names 'another-drill'"
    path = write_plan(tmp_path, lab, **keys)
    code, said = run_refusal(path, tmp_path, confirm)
    assert code == 2 and words in said
    code, out = validate(capsys, str(path), "--confirm", confirm)
    assert code == 2 and words in out and "ok  " not in out, out
    if case == "blast radius":
        assert "database-primary" in out
    if case != "confirm":  # without --confirm too: the plan is what is refused
        code, out = validate(capsys, str(path))
        assert code == 2 and words in out


CHAOS = {
    "chaos": "staging-platforms",
    "title": "Intune throttled",
    "blast_radius": ["intune"],
    "environment": {"class": "staging", "name": "staging-eu"},
    "workload": "probes",
    "faults": [{"type": "platform_degrade", "target": "intune", "params": {"mode": "throttle"}, "duration": "2s"}],
}


def test_a_chaos_fault_the_provider_cannot_do_is_refused_by_validate_as_by_chaos(tmp_path, capsys):
    """The external plan names no degrade_platform hook: `drill chaos` refuses the fault once the
    lab is up (harness.chaos.runner.capability), exit 2; validate says it without reaching it."""
    from harness.chaos.cli import _open_lab
    from harness.chaos.plan import load_chaos_plan
    from harness.chaos.runner import capability

    lab = external_lab()
    del lab["blast_radius"], lab["allow_destructive"]
    path = tmp_path / "chaos.yaml"
    path.write_text(yaml.safe_dump({**CHAOS, "lab": lab}))
    plan = load_chaos_plan(path)
    refused = capability(plan.steps[0], _open_lab(plan, None)[0])
    assert "capability platform_api_faults" in refused
    code, out = validate(capsys, str(path))
    assert code == 2 and refused in out and "nothing would be injected" in out, out
    lab["actions"]["degrade_platform"] = {"http": {"url": lab["api_url"] + "/actions/degrade-platform"}}
    path.write_text(yaml.safe_dump({**CHAOS, "lab": lab}))
    code, out = validate(capsys, str(path))
    assert code == 0, out
