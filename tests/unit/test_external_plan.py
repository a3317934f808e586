"""The external provider's plan keys: each row's actions, proxies and reads; a bad key named with
its fix (exit 2); the capabilities exactly what the plan gives; a row lacking one refused naming
the row, the capability and the keys; the blast radius over every destructive step's sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.drill import preflight
from harness.errors import PlanError
from harness.lab.base import CAPABILITIES
from harness.lab.capabilities import PlanConfigured
from harness.lab.external import ExternalConfig, ExternalLab
from harness.plan import load_plan
from harness.steps.impact import feature_steps, outside_blast_radius, step_targets
from harness.steps.needs import step_needs

ROOT = Path(__file__).resolve().parents[2]
FEATURES = sorted((ROOT / "scenarios").rglob("*.feature"))
PLATFORMS = ("intune", "jamf", "sccm", "landscape", "ansible")
RUNBOOK = "https://ops.staging.example"


def hook(path: str, method: str = "POST") -> dict:
    return {"http": {"url": f"{RUNBOOK}/{path}", "method": method, "token_env": "OPS_TOKEN"}}


def database_lab() -> dict:
    """The database rows' keys only (what the provider had before rows 1 and 3-7)."""
    return {
        "provider": "external",
        "api_url": "https://cp.staging.example",
        "toxiproxy_url": "http://toxi:8474",
        "database": {
            "failover_target": "pg-b",
            "replication_proxy": "repl-pg-b",
            "nodes": {"pg-a": {"dsn": "host=pg-a"}, "pg-b": {"dsn": "host=pg-b"}},
        },
        "actions": {"kill_database_primary": hook("kill-primary")},
        "allow_destructive": True,
        "blast_radius": ["database-primary", "repl-pg-b"],
    }


def full_lab() -> dict:
    aws = {"endpoint": "https://s3.staging.example", "access_key_env": "S3_KEY", "secret_key_env": "S3_SECRET"}
    lab = database_lab()
    lab["actions"].update(
        {
            name: hook(name)
            for name in (
                "database_rebuild",
                "database_failback",
                "kill_api_instance",
                "redeploy_api_instance",
                "degrade_platform",
                "kill_platform",
                "restart_platform",
                "block_event_store_writes",
                "release_event_store_writes",
                "kill_connector_worker",
            )
        }
    )
    lab.update(
        {
            "reads": {
                "platform_requests": hook("platform-requests", "GET"),
                "connector_replacements": hook("replacements", "GET"),
            },
            "api_tier": {"instances": {z: f"http://cp-{z}:8080" for z in ("az1", "az2", "az3")}, "probe_window_s": 1.5},
            "proxies": {
                "evidence_store": "evidence-primary",
                "evidence_replica": "evidence-dr",
                "platforms": {p: f"{p}-link" for p in PLATFORMS},
            },
            "evidence_gateway": {"url": "http://s3-faults:8080", "token_env": "GATEWAY_TOKEN"},
            "clock": {"token_file": "/run/secrets/clock"},
            "s3": {**aws, "bucket": "evidence", "replica_bucket": "evidence-dr"},
            "queues": {**aws, "prefix": "cp-staging"},
            "siem_file": "/var/log/siem.jsonl",
            "blast_radius": [
                "database-primary",
                "repl-pg-b",
                "evidence-primary",
                "evidence-dr",
                "evidence-gateway",
                "api-az1",
                "api-az2",
                "api-az3",
                "connector-workers",
                *[f"{p}-link" for p in PLATFORMS],
                *[f"{p}-api" for p in PLATFORMS],
            ],
        }
    )
    return lab


def parse(lab: dict) -> ExternalConfig:
    return ExternalConfig.parse(lab, lambda key, message: PlanError(f"key '{key}': {message}"))


STAGING = {"class": "staging", "name": "staging-eu"}


def plan_file(
    tmp_path: Path, lab: dict, scenarios: list[str], drill: str = "staging-rows", environment: dict | None = STAGING
) -> Path:
    path = tmp_path / "plan.yaml"
    plan = {"drill": drill, "title": "Staging rows", "ha_domain": "all", "lab": lab, "scenarios": scenarios}
    if environment is not None:
        plan["environment"] = environment
    path.write_text(yaml.safe_dump(plan))
    return path


# ---- bad keys: one line naming the key and the fix ----------------------------------------------


@pytest.mark.parametrize(
    "change, key, words",
    [
        (lambda lab: lab.update(proxys={}), "lab.proxys", "unknown key"),
        (lambda lab: lab.update(proxies={"evidence": "s3"}), "lab.proxies.evidence", "evidence_replica"),
        (lambda lab: lab["proxies"]["platforms"].update(windows="x"), "lab.proxies.platforms.windows", "intune"),
        (lambda lab: lab["actions"].update(nuke_region=hook("x")), "lab.actions.nuke_region", "kill_api_instance"),
        (lambda lab: lab["reads"].update(logs=hook("x")), "lab.reads.logs", "platform_requests"),
        (lambda lab: lab["api_tier"].pop("probe_window_s"), "lab.api_tier.probe_window_s", "load balancer"),
        (lambda lab: lab["api_tier"].update(instances=[]), "lab.api_tier.instances", "availability zone"),
        (
            lambda lab: lab["s3"].update(secret_access_key="AKIA-secret"),
            "lab.s3.secret_access_key",
            "must not be written in the plan",
        ),
        (lambda lab: lab["s3"].pop("secret_key_env"), "lab.s3.secret_key_env", "both keys"),
        (lambda lab: lab["s3"].pop("replica_bucket"), "lab.s3.replica_bucket", "bucket"),
        (lambda lab: lab["queues"].pop("prefix"), "lab.queues.prefix", "--queue-prefix"),
        (lambda lab: lab["clock"].update(token="hunter2-hunter2"), "lab.clock.token", "must not be written"),
        (
            lambda lab: lab["evidence_gateway"].update(url="http://gw:8080/?token=hunter2"),
            "lab.evidence_gateway.url",
            "credential must not be written",
        ),
        (
            lambda lab: lab["actions"]["kill_platform"]["http"].update(url=f"{RUNBOOK}/kill?api_key=hunter2"),
            "lab.actions.kill_platform.http.url",
            "token_env",
        ),
        (
            lambda lab: lab["reads"]["platform_requests"]["http"].update(method="DELETE"),
            "lab.reads.platform_requests.http.method",
            "POST, PUT or GET",
        ),
    ],
)
def test_a_bad_external_key_is_named_with_its_fix(change, key, words):
    lab = full_lab()
    change(lab)
    with pytest.raises(PlanError) as err:
        parse(lab)
    assert str(err.value).startswith(f"key '{key}'") and words in str(err.value)
    assert "hunter2" not in str(err.value) and "AKIA-secret" not in str(err.value)


def test_drill_run_with_a_bad_external_key_exits_2_with_one_line(tmp_path, capsys):
    lab = full_lab()
    lab["proxies"]["evidence_stor"] = "x"
    code = main(
        [
            "run",
            str(plan_file(tmp_path, lab, ["scenarios/api/stateless_outage.feature"])),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "lab.proxies.evidence_stor" in err
    assert not (tmp_path / "out").exists()


# ---- capabilities: exactly what the plan gives -----------------------------------------------------


def test_the_database_keys_give_the_database_capabilities_only():
    assert parse(database_lab()).capabilities() == {"database_kill", "replication_cut"}


def test_the_full_keys_give_every_capability_but_the_backup_service():
    assert parse(full_lab()).capabilities() == set(CAPABILITIES) - {"backups"}


@pytest.mark.parametrize(
    "drop, capability",
    [
        (lambda lab: lab["actions"].pop("redeploy_api_instance"), "api_instances"),
        (lambda lab: lab.pop("api_tier"), "api_instances"),
        (lambda lab: lab["proxies"].pop("evidence_replica"), "evidence_links"),
        (lambda lab: lab.pop("s3"), "evidence_read"),
        (lambda lab: lab.pop("evidence_gateway"), "evidence_http_errors"),
        (lambda lab: lab["actions"].pop("degrade_platform"), "platform_api_faults"),
        (lambda lab: lab["proxies"].pop("platforms"), "platform_link"),
        (lambda lab: lab["actions"].pop("restart_platform"), "platform_kill"),
        (lambda lab: lab["reads"].pop("platform_requests"), "platform_requests"),
        (lambda lab: lab["reads"].pop("connector_replacements"), "connector_workers"),
        (lambda lab: lab.pop("queues"), "queues"),
        (lambda lab: lab.pop("clock"), "clock"),
        (lambda lab: lab["actions"].pop("release_event_store_writes"), "event_store_block"),
        (lambda lab: lab.pop("siem_file"), "siem"),
    ],
)
def test_each_capability_needs_its_keys(drop, capability):
    lab = full_lab()
    drop(lab)
    assert parse(lab).capabilities() == set(CAPABILITIES) - {"backups", capability}


# ---- refusals before anything starts ---------------------------------------------------------------


def test_a_row_whose_hooks_are_missing_is_refused_naming_row_capability_and_keys(tmp_path):
    lab = full_lab()
    for action in ("kill_api_instance", "redeploy_api_instance"):
        del lab["actions"][action]
    plan = load_plan(
        plan_file(
            tmp_path, lab, ["scenarios/api/stateless_outage.feature", "scenarios/eventstore/write_blocked.feature"]
        ),
        ROOT,
    )
    problem = preflight(plan, ExternalLab(plan.lab.external, confirmed=True), "staging-rows")
    assert "cannot run this row" in problem
    row = "row 'Control Plane API/Policy services / Stateless service outage' (api/stateless_outage.feature)"
    assert row in problem
    assert "capability api_instances, step 'the API instance in az1 is killed'" in problem
    assert "Set lab.actions.kill_api_instance, lab.actions.redeploy_api_instance in the plan" in problem
    assert "write_blocked" not in problem  # that row has what it needs


def test_drill_run_refuses_it_with_exit_2_and_starts_nothing(tmp_path, capsys):
    lab = database_lab()
    code = main(
        [
            "run",
            str(plan_file(tmp_path, lab, ["scenarios/evidence/object_storage_outage.feature"])),
            "--out",
            str(tmp_path / "out"),
            "--confirm",
            "staging-rows",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "capability evidence_links" in err and "lab.proxies.evidence_store" in err
    assert not (tmp_path / "out").exists()


def test_the_backup_rows_name_another_provider_not_a_key(tmp_path):
    plan = load_plan(plan_file(tmp_path, full_lab(), ["scenarios/backup/stale_backup.feature"]), ROOT)
    problem = preflight(plan, ExternalLab(plan.lab.external, confirmed=True), "staging-rows")
    assert "capability backups" in problem and "Run them on a provider" in problem


@pytest.mark.parametrize(
    "feature, left_out, target",
    [
        (
            "evidence/object_storage_outage.feature",
            "evidence-dr",
            "the link to the alternate region is cut -> evidence-dr",
        ),
        (
            "evidence/object_storage_outage.feature",
            "evidence-gateway",
            "the evidence store answers 503 to every request -> evidence-gateway",
        ),
        (
            "connectors/intune_graph_degraded.feature",
            "intune-link",
            "the intune link gets 200 ms of latency -> intune-link",
        ),
        ("connectors/jamf_outage.feature", "jamf-api", "the jamf API answers 503 to every request -> jamf-api"),
        ("connectors/sccm_site_down.feature", "sccm-api", "the sccm site server is killed -> sccm-api"),
        ("api/stateless_outage.feature", "api-az2", "every API instance is down -> api-az2"),
    ],
)
def test_a_fault_outside_the_blast_radius_is_refused(tmp_path, feature, left_out, target):
    lab = full_lab()
    lab["blast_radius"].remove(left_out)
    plan = load_plan(plan_file(tmp_path, lab, [f"scenarios/{feature}"]), ROOT)
    problem = preflight(plan, ExternalLab(plan.lab.external, confirmed=True), "staging-rows")
    assert "key 'lab.blast_radius'" in problem and target in problem
    full = load_plan(plan_file(tmp_path, full_lab(), [f"scenarios/{feature}"]), ROOT)
    assert preflight(full, ExternalLab(full.lab.external, confirmed=True), "staging-rows") is None


def test_a_platform_link_without_its_proxy_names_the_key(tmp_path):
    lab = full_lab()
    del lab["proxies"]["platforms"]["intune"]
    plan = load_plan(plan_file(tmp_path, lab, ["scenarios/connectors/intune_graph_degraded.feature"]), ROOT)
    problem = preflight(plan, ExternalLab(plan.lab.external, confirmed=True), "staging-rows")
    assert "the intune link gets 200 ms of latency -> (no proxy: set lab.proxies.platforms.intune)" in problem


HARM = {
    "database_kill",
    "replication_cut",
    "api_instances",
    "evidence_links",
    "evidence_http_errors",
    "platform_api_faults",
    "platform_link",
    "platform_kill",
    "connector_workers",
    "event_store_block",
}
HEALS = ("is redeployed", "are redeployed", "is restarted")


def test_every_destructive_step_of_every_feature_has_a_target():
    targets = ExternalLab(parse(full_lab()), confirmed=True).capability(PlanConfigured).fault_targets()
    harmful = {
        s
        for path in FEATURES
        for s in feature_steps(path)
        if set(step_needs(s)) & HARM
        and not s.endswith(HEALS)
        and not s.startswith("an approved intent")
        and not s.startswith(
            ("an intent for", "every intent", "assignments fail", "the connectors keep", "its retries", "a Ring")
        )
    }
    assert harmful, "no destructive step found"
    untargeted = sorted(s for s in harmful if not step_targets(s, targets))
    assert not untargeted, untargeted
    assert not outside_blast_radius(
        FEATURES,
        targets,
        tuple(full_lab()["blast_radius"])
        + ("backup-store", "database-all-nodes", "backup-key-vault", "backup-service"),
    )


def test_the_blast_radius_judges_only_the_scenarios_the_tag_expression_selects():
    targets = ExternalLab(parse(full_lab()), confirmed=True).capability(PlanConfigured).fault_targets()
    radius = tuple(full_lab()["blast_radius"])
    everything = outside_blast_radius(FEATURES, targets, radius)
    assert any("region_loss.feature" in line for line in everything)  # backup rows: outside it
    assert outside_blast_radius(FEATURES, targets, radius, "@quarterly and not @ha-domain:backup-restore") == []


def test_step_targets_match_parametrized_sentences():
    names = ExternalLab(parse(full_lab()), confirmed=True).capability(PlanConfigured).fault_targets()
    assert step_targets("the API instance in az3 is killed", names) == ["api-az3"]
    assert step_targets("the database primary is killed", names) == ["database-primary"]
    assert step_targets("every API instance is down", names) == ["api-az1", "api-az2", "api-az3"]
    assert step_targets("the jamf link gets 50 ms of latency", names) == ["jamf-link"]
    assert step_targets("writes resume", names) == []


# ---- runbook hooks: every key read or refused ----------------------------------------------------


def hook_with(**http) -> dict:
    return {"http": {"url": f"{RUNBOOK}/kill", **http}}


def test_a_hook_takes_its_token_from_a_file_as_clock_and_the_gateway_do():
    lab = full_lab()
    lab["actions"]["kill_platform"] = hook_with(token_file="/run/secrets/ops-token")
    hook = parse(lab).actions["kill_platform"]
    assert hook.token_file == "/run/secrets/ops-token" and hook.token_env is None


@pytest.mark.parametrize(
    "entry, key, words",
    [
        (
            hook_with(token_env="OPS_TOKEN", tokn_file="/run/secrets/x"),
            "lab.actions.kill_platform.http.tokn_file",
            "unknown key; known: url, method, token_env, token_file",
        ),
        (hook_with(token_env="OPS_TOKEN", headers={"X": "y"}), "lab.actions.kill_platform.http.headers", "unknown key"),
        (
            {**hook_with(token_env="OPS_TOKEN"), "timeout": 5},
            "lab.actions.kill_platform.timeout",
            "unknown key; known: command, http, timeout_s",
        ),
        ({"command": ["/bin/true"], "token_env": "OPS_TOKEN"}, "lab.actions.kill_platform.token_env", "unknown key"),
        ({"command": ["/bin/true"], "http": {"url": f"{RUNBOOK}/kill"}}, "lab.actions.kill_platform", "not both"),
        (hook_with(token_env=""), "lab.actions.kill_platform.http.token_env", "must name an environment variable"),
        (hook_with(token_env="OPS TOKEN"), "lab.actions.kill_platform.http.token_env", "must name an environment"),
        (hook_with(token_file=""), "lab.actions.kill_platform.http.token_file", "must name the file"),
        (hook_with(token_file="/run/\0x"), "lab.actions.kill_platform.http.token_file", "must name the file"),
        (
            hook_with(token_env="A", token_file="/f"),
            "lab.actions.kill_platform.http",
            "token_env or token_file, not both",
        ),
        ({"command": ["/bin/true", "a\0b"]}, "lab.actions.kill_platform.command", "NUL"),
        ({"command": [""]}, "lab.actions.kill_platform.command", "the program is named first"),
    ],
)
def test_a_hook_key_that_would_be_dropped_or_empty_is_refused_naming_it(entry, key, words):
    """A hook used to read only url, method and token_env: a token_file, or a misspelled key, was
    dropped silently and the validated plan ran its hooks without a token (a signed FAIL); an
    empty token_env called the hook without one too."""
    lab = full_lab()
    lab["actions"]["kill_platform"] = entry
    with pytest.raises(PlanError) as err:
        parse(lab)
    assert str(err.value).startswith(f"key '{key}'") and words in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "timeout",
    [10**400, float("nan"), float("inf"), 1e300, 0, -1, True, "60"],
    ids=["400 digits", "nan", "inf", "1e300", "0", "-1", "true", "a string"],
)
def test_a_hook_timeout_that_is_no_time_is_refused_naming_the_key(timeout):
    lab = full_lab()
    lab["reads"]["platform_requests"]["timeout_s"] = timeout
    with pytest.raises(PlanError) as err:
        parse(lab)
    assert str(err.value).startswith("key 'lab.reads.platform_requests.timeout_s'")
    assert "at most 86400" in str(err.value)


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda lab: lab.update(api_url="http://[::1"), "lab.api_url"),
        (lambda lab: lab.update(toxiproxy_url="http://toxi:99999"), "lab.toxiproxy_url"),
        (lambda lab: lab.update(api_url="http://"), "lab.api_url"),
        (lambda lab: lab["evidence_gateway"].update(url="http://[fe80::1/x"), "lab.evidence_gateway.url"),
        (lambda lab: lab["api_tier"]["instances"].update(az1="http://cp-az1:80x"), "lab.api_tier.instances.az1"),
        (
            lambda lab: lab["actions"]["kill_platform"]["http"].update(url="https://[::1/kill"),
            "lab.actions.kill_platform.http.url",
        ),
        (lambda lab: lab["s3"].update(endpoint="https://s3 .example"), "lab.s3.endpoint"),
        (lambda lab: lab.update(blast_radius=["database-primary", ""]), "lab.blast_radius"),
        (lambda lab: lab.update(name="staging\x1b[2J"), "lab.name"),
        (lambda lab: lab["database"]["nodes"]["pg-a"].update(password_env=""), "lab.database.nodes.pg-a.password_env"),
        (
            lambda lab: lab["database"]["nodes"]["pg-a"].update(password_file=""),
            "lab.database.nodes.pg-a.password_file",
        ),
        (lambda lab: lab["database"]["nodes"]["pg-a"].update(dsn=""), "lab.database.nodes.pg-a.dsn"),
        (lambda lab: lab["database"]["nodes"]["pg-a"].update(dsn="host=pg-a\0 port=1"), "lab.database.nodes.pg-a.dsn"),
    ],
)
def test_a_url_or_name_that_cannot_work_is_refused_at_load(change, key):
    """urlsplit raised ValueError on http://[::1 (exit 70); an empty name passed and failed later."""
    lab = full_lab()
    change(lab)
    with pytest.raises(PlanError) as err:
        parse(lab)
    assert str(err.value).startswith(f"key '{key}'"), str(err.value)
