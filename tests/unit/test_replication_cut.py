"""The replication cut is made and healed by harness.faults.replication, above the lab (the lab layer
never imports harness.faults): refused before anything is injected in a dry run, and on a lab whose
plan names no replication link to cut."""

from __future__ import annotations

import pytest

from harness.errors import LabStartError, PlanError
from harness.faults.replication import partition_replication
from harness.lab.external import ExternalConfig, ExternalLab

NOT_LISTENING = "http://127.0.0.1:9"  # discard port: nothing is reached should a refusal come too late


def external_lab(confirmed: bool = True, **database: str) -> ExternalLab:
    data = {
        "provider": "external",
        "api_url": "https://cp.staging.example",
        "toxiproxy_url": NOT_LISTENING,
        "database": {
            "failover_target": "pg-b",
            **database,
            "nodes": {"pg-a": {"dsn": "host=pg-a"}, "pg-b": {"dsn": "host=pg-b"}},
        },
        "allow_destructive": True,
        "blast_radius": ["database-primary", "repl-pg-b"],
    }
    config = ExternalConfig.parse(data, lambda key, message: PlanError(f"key '{key}': {message}"))
    return ExternalLab(config, confirmed=confirmed)


def test_a_dry_run_refuses_the_cut_naming_the_interlock():
    lab = external_lab(confirmed=False, replication_proxy="repl-pg-b")
    with pytest.raises(PermissionError) as refused:
        partition_replication(lab, "pg-b")
    assert str(refused.value) == "dry run: fault refused (the command line has no --confirm <drill id>)"


def test_a_plan_naming_no_replication_proxy_is_refused_naming_the_key():
    lab = external_lab()
    with pytest.raises(LabStartError) as refused:
        partition_replication(lab, "pg-b")
    assert str(refused.value) == "the plan has no lab.database.replication_proxy to cut"


def test_the_lab_layer_no_longer_cuts_replication_itself():
    lab = external_lab(replication_proxy="repl-pg-b")
    assert not hasattr(lab, "partition_replication") and not hasattr(lab, "heal_fault")
