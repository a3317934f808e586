"""What each step of the scenarios needs of a lab, known before anything runs.

A lab provider declares its capabilities (`Lab.capabilities()`); a plan whose selected scenarios
have a step needing one the lab lacks is refused before the lab starts, naming the matrix row
(the feature's title), the step and the missing capability, never half-run. Every step sentence
of scenarios/ is classified here: by a NEEDS pattern, or as PLAIN (the API and reads of the
database nodes only, which every provider has); tests/unit/test_needs.py keeps it so.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..lab.base import CAPABILITIES
from .impact import feature_steps

# (pattern of a step sentence, capabilities it needs)
NEEDS: list[tuple[re.Pattern, tuple[str, ...]]] = [(re.compile(p), caps) for p, caps in [
    (r"^the database primary is killed$", ("database_kill",)),
    (r"^the replication link to the replica is cut$", ("replication_cut",)),
    (r"^the API instance in \S+ is (killed|redeployed)$|^every API instance is down$|"
     r"^the API instances are redeployed$", ("api_instances",)),
    (r"^the link to the alternate region is cut$|^the evidence store becomes unreachable$",
     ("evidence_links",)),
    (r"^an approved intent's evidence is committed with(out)? a copy", ("evidence_read",)),
    (r"^the evidence store answers \d+ to every request$|^its retries back off exponentially$",
     ("evidence_http_errors",)),
    (r"^a test Deployment Intent is submitted", ("evidence_read", "siem")),
    (r"^every evidence object the drill wrote is locked", ("evidence_read",)),
    (r"^every event-store export the drill wrote is locked", ("backups",)),
    (r"^\S+ answers 429 with Retry-After|^the \S+ API answers 503 to every request$",
     ("platform_api_faults",)),
    (r"^the \S+ link gets \d+ ms of latency$", ("platform_link",)),
    (r"^the \S+ site server is (killed|restarted)$", ("platform_kill",)),
    (r"^an intent for \S+ is published and applied$|^every intent published for \S+ is applied exactly once$|"
     r"^assignments fail for \S+ only|^the connectors keep serving the queued", ("platform_requests",)),
    (r"^the connector workers are lost|rollback reaches every platform exactly once",
     ("connector_workers", "platform_requests")),
    (r"^the queue depth of \S+ is reported|dead-letter|dead-lettered", ("queues",)),
    (r"^event store writes are blocked on the database primary$", ("event_store_block",)),
    (r"snapshot|backup|cross-region export|restored (from|data|primary)|database is lost|encryption key|"
     r"soft-delete|daily inventory|replayed and applied|clock runs \d+ hours", ("backups", "clock")),
]]

# steps that need only the API, the lab's steady-state checks, the fault journal's heal and reads
# of the database nodes (every provider has these); the post-failover validation reads the SIEM
# sink where the provider can, and says so where it cannot
PLAIN = re.compile("|".join([
    r"^the lab is in steady state$", r"^\d+ (minutes|hours) pass$", r"^a sequenced workload of intents and approvals is running$",
    r"^the .+ link is restored$", r"^\d+ writes are attempted$", r"^writes resume$",
    r"^the data is consistent$", r"^the post-failover validation passes$", r"^the replica is promoted and clients are repointed$",
    r"^the old primary is rebuilt as a replica$", r"^failback is refused while TransactionLag > ",
    r"^the replica has caught up$", r"^publishing and approval are blocked naming the cause",
    r"^the load balancer routes around it", r"^the API stays available at",
    r"^new intents and approvals are blocked", r"^a publish is refused while ServiceHealth",
    r"^the gate ServiceHealth = Healthy", r"^intents are published for ", r"^every platform's connector is healthy$",
    r"^PromotionsPaused is set for", r"^a CAB (manual pause is raised|notification is emitted) for",
    r"^promoting one \S+ intent is refused", r"^promotions for \S+ (resume|stay paused)",
    r"^the CAB lifts the pause for", r"^the connector backoff doubles", r"^the Control Plane counts \d+ throttled",
    r"^the Control Plane records the \S+ site outage$", r"^the \S+ platform recovers$",
    r"^the fallback to manual import is offered", r"^no critical ring has a queue backlog",
    r"^publishing (is refused until the event store is healthy|resumes)$",
    r"^the event store fails over to the redundant cluster$", r"^no audit event is lost or duplicated",
    r"^the gate EventStoreWriteSuccess", r"^the evidence store (recovers|link is restored)$",
    r"^publishing a pack without a validated copy is blocked", r"^an event Impact = publish blocked",
    r"^a pack with a validated copy is published", r"^the workload's publishes go through again$",
    r"^approving an intent whose evidence pack is not Committed is refused",
]))


def step_needs(step: str) -> tuple[str, ...]:
    """The capabilities a step sentence needs (none for a PLAIN step)."""
    needed: list[str] = []
    for pattern, caps in NEEDS:
        if pattern.search(step):
            needed += [c for c in caps if c not in needed]
    return tuple(needed)


def classified(step: str) -> bool:
    return bool(step_needs(step)) or bool(PLAIN.search(step))


def feature_title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("Feature:"):
            return line.strip()[len("Feature:"):].strip()
    return path.stem


def missing_capabilities(features: list[Path], have: frozenset[str] | set[str],
                         expression: str | None = None) -> list[str]:
    """One line per matrix row (feature) that needs what the lab lacks: the row, its file, what it
    needs and the first step that needs it. Empty: every row can run."""
    lines = []
    for path in features:
        lacking: dict[str, str] = {}
        for step in feature_steps(path, expression):
            for cap in step_needs(step):
                if cap not in have:
                    lacking.setdefault(cap, step)
        if lacking:
            what = "; ".join(f"{CAPABILITIES[cap]} (capability {cap}, step '{step}')"
                             for cap, step in lacking.items())
            lines.append(f"row '{feature_title(path)}' ({path.parent.name}/{path.name}) needs {what}")
    return lines
