"""The spec's validation rules as pure gates over a scenario's History: pass, fail or unknown.

What the runner records and the gates read (the contract between them):
  ops (the harness's own clients; value / detail):
    write, evidence, approve, publish   key / intent_id, platform, ring, answer fields
    create_intent                       key (a step's explicit attempt)
    promote                             intent key / platform, to_ring, gate (of a refusal)
    probe, health                       - / ServiceHealth, components
    final_read                          keys read back / published (keys read back Published)
    final_applied                       keys the platforms applied (one per applied arrival)
    steady_state                        {check: [ok, detail]} / phase before|after
    read_events                         event rows / type (a read of the event store)
    read_audit, read_drill_events       the scenario's event rows (by correlation id)
    read_deployment_events              DrillEvent rows of the scenario's time, any correlation id
                                        (the deployment's own failover events among them)
    read_chain                          every event row of the chain
    read_siem                           the SIEM sink's records (the scenario's, and every DrillEvent)
    store_read                          sha256 of the object read, or None / key, expected
    platforms_view, platform_view       the Control Plane's view of its platforms / platform
    queue_metrics                       the Control Plane's queue metrics
    queue_depth, dead_letters           the harness's own read of a queue / platform
    requeue, cab_lift                   the answer / platform
    lag, failback                       TransactionLag seconds / node
    backup_catalogue                    the harness's check of every snapshot in the backup store / phase, cp_now
    export_delete_attempt               {deleted, error}: the harness tried to delete a locked export
    evidence_versions, inventory_read   versions the harness listed / the day's inventory (eventstore_sha256)
    restored_data, restored_sample      counts, chain and approvals of the restored database / intents read
    key_read, key_purge                 fingerprint of the backup key / phase before|deleted|recovered
    replay_read                         keys of the replayed intents read back after a restore
  events: inject / heal (the fault journal, name = fault label), detect / fence / promote /
    reconnect / rebuild / lag_check / failback / failover_error (the lab's failover), platform_request
    (a stand-in's log, source platform:<name>), gateway_request (source gateway:<name>), clock (the
    harness moved the Control Plane's clock by detail.seconds), checkpoint (a step looked),
    restore_download / restore_verify / restore_refused / restore_rehydrate / restore_done (source
    restore: the restore runbook's log, detail snapshot_id, ok, reason), halt / chaos_end (an ad hoc
    chaos run was stopped early, detail reason / ran its whole fault sequence). An event the harness
    delivered to the event store itself (harness.runner.forwarder) carries detail forwarded: True.
"""

from harness.gates import (  # noqa: F401
           api,
           availability,
           backup,
           chaos,
           connectors,
           eventstore,
           evidence,
           recovery,
           steady,
           validation,
           worm,
)
from harness.gates.base import GATES, Gate, Span, drill_verdict, evaluate_gate, evaluate_gates, fault_span, register

__all__ = ["GATES", "Gate", "Span", "drill_verdict", "evaluate_gate", "evaluate_gates", "fault_span", "register",
           "api", "availability", "backup", "chaos", "connectors", "evidence", "eventstore", "recovery", "steady",
           "validation"]
