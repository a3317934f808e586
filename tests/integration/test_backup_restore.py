"""The backup and restore drill (spec section 3, rule 3) on the embedded lab, and its negatives: a
restore that skips hash verification, and a restore from a snapshot older than a tier-1 plan's
backup RPO, must each fail the named gate. One lab for the module."""

from __future__ import annotations

from dataclasses import replace

from harness.plan import load_plan
from tests.integration.conftest import ROOT, gates_of, not_passed, run_loaded, run_plan


def scenario_named(results: dict, feature: str) -> dict:
    return next(s for s in results["scenarios"] if s["feature"] == f"backup/{feature}.feature")


def test_the_quarterly_backup_restore_drill_proves_snapshots_retention_staleness_and_restores(lab, tmp_path):
    code, results = run_plan("quarterly-backup-restore.yaml", lab, tmp_path)
    assert code == 0, not_passed(results)
    hourly = gates_of(scenario_named(results, "hourly_snapshots"))
    assert hourly["retention_applied"]["measured"]["expired_kept"] == []
    assert hourly["retention_applied"]["measured"]["export_delete"].startswith("refused")
    stale = gates_of(scenario_named(results, "stale_backup"))
    assert {"publish_refused_backup_stale", "publish_accepted_backup_fresh"} <= set(stale)
    corrupted = scenario_named(results, "corrupted_snapshot")
    g = gates_of(corrupted)
    refused = g["corrupt_snapshot_refused"]["measured"]
    assert refused["refused"] is True and "truncated" in refused["reason"]
    assert g["restored_data_valid"]["measured"]["chain"]["verified"] is True
    assert g["replayed_exactly_once"]["measured"]["applied_twice"] == []
    # the restore's phases, measured
    assert {"restore_download_s", "restore_verify_s", "restore_rehydrate_s", "restore_validate_s"} <= set(
        corrupted["measurements"]
    )
    loss = gates_of(scenario_named(results, "region_loss"))
    assert loss["key_recovered"]["measured"]["purge"] == "refused"


def test_a_restore_that_skips_hash_verification_fails_snapshot_verified(lab, tmp_path):
    plan = load_plan(ROOT / "drills" / "quarterly-backup-restore.yaml", ROOT)
    lab.restore_verifies = False
    try:
        code, results = run_loaded(
            replace(plan, scenarios=(ROOT / "scenarios/backup/region_loss.feature",)), lab, tmp_path
        )
    finally:
        lab.restore_verifies = True
    gate = gates_of(results["scenarios"][0])["snapshot_verified"]
    assert code == 1 and gate["verdict"] == "fail", not_passed(results)
    assert gate["measured"]["verified_before_rehydrate"] is False


def test_a_restore_from_a_snapshot_older_than_a_tier_1_plans_rpo_fails_backup_rpo(lab, tmp_path):
    path = tmp_path / "tier1.yaml"
    path.write_text(
        "drill: tier1-restore\ntitle: t\nha_domain: backup-restore\nlab: embedded\ntier: 1\n"
        "scenarios: [scenarios/backup/corrupted_snapshot.feature]\n"
    )
    plan = load_plan(path, ROOT)
    assert plan.targets["backup_rpo_seconds"] == 3600
    code, results = run_loaded(plan, lab, tmp_path)
    g = gates_of(results["scenarios"][0])
    # the newest snapshot is corrupted: the one restored is an hour older, past the tier-1 target
    assert code == 1 and g["backup_rpo_seconds"]["verdict"] == "fail", not_passed(results)
    assert g["backup_rpo_seconds"]["measured"] > 3600
    assert g["snapshot_verified"]["verdict"] == "pass" and g["corrupt_snapshot_refused"]["verdict"] == "pass"
