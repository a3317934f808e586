"""Harness calls every scenario shares: the steady state (before and after), the workload, reads
of the event store and the lab's parts, and the scenario's end (heal, read back, judge)."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..gates import evaluate_gates
from ..gates.availability import AvailabilityBudget
from ..gates.base import gate_figures
from ..gates.eventstore import CorrelationIdsRecorded
from ..gates.recovery import DuplicatedApplies, DuplicatedEvents, DuplicatedWrites, LostWrites, RpoSeconds, RtoSeconds
from ..gates.steady import FaultsHealed, SteadyState
from ..gates.waiver import waivable
from ..lab.capabilities import (
    ConnectorWorkers,
    DatabaseNodes,
    EvidenceStore,
    FailoverManagerEvents,
    PlatformStandIns,
    Siem,
)
from ..lab.connectors import PLATFORMS
from ..matrix import links
from ..measure.probes import TARGET
from ..model import EventKind, OpDetail, OpKind, Outcome
from ..plan import AvailabilityPolicy
from ..wait import poll
from ..workload import ApiClient, ControlPlane, Prober, SequencedWriter
from .scenario import ProbeIntent, Scenario, SteadyStateNotMet, Workload, required, utc_now

if TYPE_CHECKING:
    from ..lab.base import Lab

STEADY_PROBES = 5  # consecutive healthy answers required of the API
STEADY_TIMEOUT = 30.0  # before injection
AFTER_HEAL_TIMEOUT = 90.0  # after every heal: the lab may take a while to come back
PAGE = 1000  # GET /events answers at most 1000 rows
WARM_UP_WRITES = 25  # acknowledged writes before any fault, so loss has something to hit
FORWARD_TIMEOUT = 30.0


# ---- steady state -----------------------------------------------------------------------------


def _healthy_streak(api_url: str, timeout: float) -> list:
    """[ok, detail]: STEADY_PROBES Healthy answers in a row through the load balancer."""
    client = ApiClient(api_url, timeout=3)
    streak, last = [0], [""]

    def probe() -> int:
        reply = client.health()
        streak[0], last[0] = (streak[0] + 1, "") if reply.outcome is Outcome.OK else (0, reply.error)
        return streak[0]

    try:
        polled = poll(probe, until=lambda n: n >= STEADY_PROBES, timeout=timeout, interval=0.05)
    finally:
        client.close()
    return [polled.ok, f"{STEADY_PROBES} Healthy answers in a row" if polled.ok else (last[0] or "no healthy answer")]


def steady_state(scn: Scenario, phase: str = "before") -> None:
    """The steady-state hypothesis, recorded as one op (each check's [ok, detail]) and judged by the
    gate SteadyState(phase). Before: heal what a killed run left (the lab's reset), then require the
    lab's own checks and the API's health green, else stop without harm. After: every fault healed,
    the lab must come back green by itself (no reset)."""
    lab = scn.lab
    scn.drill.progress("steady state", phase)
    timeout = STEADY_TIMEOUT if phase == "before" else AFTER_HEAL_TIMEOUT
    if phase == "before":
        lab.reset_faults()

    def observe():
        started = time.monotonic()
        polled = poll(
            lab.steady_state_checks, until=lambda c: all(ok for ok, _ in c.values()), timeout=timeout, interval=0.1
        )
        checks = {name: [ok, detail] for name, (ok, detail) in polled.value.items()}
        if polled.ok:
            checks["ServiceHealth"] = _healthy_streak(lab.api_url, max(5.0, timeout - (time.monotonic() - started)))
        failed = sorted(name for name, (ok, _) in checks.items() if not ok)
        return (Outcome.FAIL if failed else Outcome.OK), checks, f"not green: {', '.join(failed)}" if failed else ""

    op = scn.recorder.invoke(OpKind.STEADY_STATE, observe, correlation_id=scn.correlation_id, detail={"phase": phase})
    scn.expect(SteadyState(phase))
    if phase == "before":
        if not op.ok:
            scn.aborted = True
            raise SteadyStateNotMet(f"steady state not met, nothing injected: {op.error or op.value}")
        scn.observe("Steady state: every probe green; nothing injected before this check passed.")


# ---- workload -------------------------------------------------------------------------------


def start_workload(scn: Scenario, interval: float = 0.02) -> None:
    """A sequenced writer (intents; every 5th also evidence, approval and publish) and a prober."""
    writer_client, probe_client = ApiClient(scn.lab.api_url), ApiClient(scn.lab.api_url, timeout=2)
    prefix = f"{scn.drill.drill}-{scn.correlation_id.split('/')[0][:8]}-{len(scn.drill.scenarios)}"
    writer = SequencedWriter(writer_client, scn.recorder, prefix, scn.correlation_id, interval, approve_every=5)
    prober = Prober(probe_client, scn.recorder, interval=0.1)
    scn.workload = Workload(writer, prober, [writer_client, probe_client])
    # an intent with committed evidence, for the "approval/publish blocked" checks later
    key = f"{prefix}-probe"
    created = scn.call(OpKind.CREATE_INTENT, ControlPlane.create_intent(key), value=key, read=lambda body: body["id"])
    if created.ok:
        scn.call(OpKind.EVIDENCE, ControlPlane.evidence(created.value, "evidence of the probe intent"), value=key)
        scn.probe = ProbeIntent(created.value, key)
    prober.start()
    writer.start()
    wait_for_count(scn, OpKind.WRITE, WARM_UP_WRITES, after=0.0, timeout=60)


def start_probes(scn: Scenario) -> None:
    """Health probes only (no writes): the API's availability while the scenario's faults act."""
    client = ApiClient(scn.lab.api_url, timeout=2)
    prober = Prober(client, scn.recorder, interval=0.1)
    scn.workload = Workload(None, prober, [client])
    prober.start()


def pause_writer(scn: Scenario) -> SequencedWriter:
    """Stop the background writer (for exact write counts); the writer object stays usable."""
    writer = scn.writer()
    writer.stop()
    return writer


def wait_for_count(scn: Scenario, kind: OpKind, count: int, after: float, timeout: float) -> bool:
    """Poll the history until `count` ok ops of `kind` were invoked at/after `after`."""
    return poll(
        lambda: sum(1 for o in scn.recorder.ops(kind) if o.ok and o.t_invoke >= after) >= count,
        timeout=timeout,
        interval=0.02,
    ).ok


def wait_for_ok(scn: Scenario, kind: OpKind, after: float, timeout: float) -> float | None:
    """Completion time of the first ok op of `kind` invoked at/after `after`, polling the history."""
    polled = poll(
        lambda: [
            o.t_complete for o in scn.recorder.ops(kind) if o.ok and o.t_invoke >= after and o.t_complete is not None
        ],
        timeout=timeout,
        interval=0.02,
    )
    return min(polled.value) if polled.ok else None


# ---- reads ----------------------------------------------------------------------------------


def read_events(
    scn: Scenario,
    kind: OpKind = OpKind.READ_EVENTS,
    type_: str | None = None,
    own: bool = False,
    correlation_id: str | None = None,
    keep: Callable[[dict], bool] | None = None,
    **detail: Any,
) -> Any:
    """Read the event store (every page of GET /events, optionally one type, optionally only this
    scenario's correlation id or another one, optionally only the rows `keep` keeps) as one op of
    `kind` whose value is the rows."""
    params: dict[str, Any] = {"limit": PAGE}
    if type_:
        params["type"] = type_
    if own or correlation_id:
        params["correlation_id"] = correlation_id or scn.correlation_id
        detail.setdefault("correlation_id", params["correlation_id"])

    def fetch():
        client = ApiClient(scn.lab.api_url, timeout=15)
        rows, after = [], 0
        try:
            while True:
                reply = client.send(ControlPlane.events(**params, after=after), scn.correlation_id)
                if reply.outcome is not Outcome.OK:
                    return reply.outcome, None, reply.error
                page = reply.body["events"]
                rows += page if keep is None else [r for r in page if keep(r)]
                if len(page) < PAGE:
                    return Outcome.OK, rows, ""
                after = page[-1]["seq"]
        finally:
            client.close()

    return scn.recorder.invoke(
        kind,
        fetch,
        correlation_id=scn.correlation_id,
        detail=cast(OpDetail, {**({"type": type_} if type_ else {}), **detail}),
    )


def read_siem(scn: Scenario) -> Any:
    """The SIEM sink's records of this scenario (a lab part's file): those of its correlation id,
    and every DrillEvent record (the deployment's own failover events carry its correlation ids);
    indeterminate when the provider cannot read it."""

    def fetch():
        records = scn.lab.part(Siem).siem_records()
        if records is None:
            return Outcome.INFO, None, "the SIEM sink is not readable by this provider"
        return (
            Outcome.OK,
            [r for r in records if r.get("correlation_id") == scn.correlation_id or r.get("type") == "DrillEvent"],
            "",
        )

    return scn.recorder.invoke(OpKind.READ_SIEM, fetch, correlation_id=scn.correlation_id)


def _emitted_at(row: dict) -> float | None:
    """When a DrillEvent happened: its emitter's "at" (epoch), else the store's."""
    at = (row.get("payload") or {}).get("at")
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return float(at)
    try:
        return dt.datetime.fromisoformat(str(row.get("at"))).timestamp()
    except ValueError:
        return None


def read_deployment_events(scn: Scenario) -> Any:
    """Every DrillEvent in the store that happened during this scenario, whatever its correlation
    id, except those of this drill's other scenarios: the deployment's own failover events among
    them (the gate tells them from the harness's forwarded ones by the event ids it posted)."""
    history = scn.recorder.history()
    walls = [o.wall_invoke for o in history.ops] + [e.wall for e in history.events]
    since = min(walls) if walls else time.time()
    drill = f"{scn.drill.correlation_id}/"

    def keep(row: dict) -> bool:
        cid = str(row.get("correlation_id") or "")
        return (cid == scn.correlation_id or not cid.startswith(drill)) and (_emitted_at(row) or 0.0) >= since - 1.0

    return read_events(scn, OpKind.READ_DEPLOYMENT_EVENTS, type_="DrillEvent", keep=keep, since=round(since, 3))


def platform_log(lab: Lab, platform: str) -> list[dict] | None:
    """The stand-in's request log, or None when this lab has no platform stand-ins."""
    try:
        return lab.part(PlatformStandIns).platform_requests(platform)
    except NotImplementedError:
        return None


def applied_counts(scn: Scenario, platform: str) -> Counter:
    """{idempotency key: times the platform answered 200}, straight from the stand-in's log (for
    waiting; the gates read the same log from the history)."""
    return Counter(
        r.get("idempotency_key")
        for r in platform_log(scn.lab, platform) or ()
        if r.get("status") == 200 and r.get("path", "/apply") == "/apply"
    )


def harvest(scn: Scenario) -> None:
    """Copy the lab parts' own logs of this scenario's time into its history: every request each
    platform stand-in and the S3 gateway received, and every connector worker the auto-scaling
    group replaced ("worker_replaced", source asg), timed by them. A log this provider does not
    have is skipped; one that cannot be read is said in the scenario's observations (the checkers
    that need it then see nothing, and cannot pass on it)."""
    since = scn.recorder.history().ops[0].wall_invoke if scn.recorder.ops() else None

    def read(what: str, fetch: Callable[[], list[dict]]) -> list[dict] | None:
        try:
            return fetch()
        except (NotImplementedError, KeyError, AttributeError):
            return None
        except Exception as exc:  # noqa: BLE001 - a lab part that cannot be read is a finding, not a crash
            scn.observe(f"The {what} could not be read: {type(exc).__name__}: {exc}")
            return None

    for platform in PLATFORMS:

        def requests_of(platform: str = platform) -> list[dict]:
            return scn.lab.part(PlatformStandIns).platform_requests(platform)

        log = read(f"{platform} platform's request log", requests_of)
        if log is None:
            break
        scn.recorder.import_records(EventKind.PLATFORM_REQUEST, f"platform:{platform}", log, since_wall=since)
    replaced = (
        read("auto-scaling group's replacements", lambda: scn.lab.part(ConnectorWorkers).connector_replacements()) or []
    )
    scn.recorder.import_records(EventKind.WORKER_REPLACED, "asg", replaced, key="new_pid", since_wall=since)
    requests = read("S3 gateway's request log", lambda: scn.lab.part(EvidenceStore).gateway_requests("s3"))
    if requests is not None:
        scn.recorder.import_records(EventKind.GATEWAY_REQUEST, "gateway:s3", requests, since_wall=since)


# ---- the end of a scenario --------------------------------------------------------------------


def finish(scn: Scenario, interrupted: bool = False) -> None:
    """1. stop the clients; 2. heal every fault still active (newest first); 3. the steady state
    again; 4. read back: the writes, the audit events, the platforms' and the gateway's logs, the
    lab's events in the store and the SIEM; 5. add the standard rules; 6. judge everything.
    Interrupted (Ctrl-C): 1 and 2 only, at once."""
    if scn.workload is not None:
        scn.workload.stop()
    for problem in scn.journal.heal_all():
        scn.observe(f"Heal failed at the end of the scenario: {problem}")
    if interrupted:
        scn.error = scn.error or "interrupted"
        scn.finished_at = utc_now()
        return
    if scn.not_run is not None:
        finish_not_run(scn)
        return
    injected = bool(scn.journal.entries)
    if injected and not scn.aborted:
        steady_state(scn, "after")
    scn.drill.progress("verify", f"reading back and judging {scn.name}")
    writer = scn.workload.writer if scn.workload else None
    if writer is not None and not scn.aborted:
        writer.final_read()
        read_events(scn, OpKind.READ_AUDIT, own=True)
    harvest(scn)
    if scn.published:
        keys = [i["key"] for items in scn.published.values() for i in items]
        scn.read(
            OpKind.FINAL_APPLIED,
            lambda: [
                k for p in scn.published for k, n in applied_counts(scn, p).items() if k in keys for _ in range(n)
            ],
        )
    if injected:
        scn.expect(FaultsHealed())
        forwarder = scn.drill.forwarder
        if forwarder is not None and not forwarder.flush(FORWARD_TIMEOUT):
            scn.observe(
                f"Events the harness forwards still undelivered after {FORWARD_TIMEOUT:.0f} s: "
                + "; ".join(list(forwarder.failures.values())[:5])
            )
        # the lab's failover manager's own poster
        events = scn.lab.find(FailoverManagerEvents)
        if events is not None and not events.flush_events(FORWARD_TIMEOUT):
            scn.observe(f"The lab's failover manager had not delivered its events after {FORWARD_TIMEOUT:.0f} s.")
        # rule 2: this scenario's rows (the Control Plane's audit events of its operations, the
        # events the harness forwarded), the deployment's own failover events, and the SIEM
        read_events(scn, OpKind.READ_DRILL_EVENTS, own=True)
        read_deployment_events(scn)
        read_siem(scn)
        rule2 = CorrelationIdsRecorded()
        idle = rule2.nothing_to_judge(scn.recorder.history())
        if idle:  # e.g. a probes-only chaos run whose latency failed nothing over: n/a, with why
            scn.not_applicable[rule2.id] = idle
        else:
            scn.expect(rule2)
    standard_rules(scn)
    scn.gates = evaluate_gates(scn.checks, scn.recorder.history())
    # figures a checker measures beside its verdict (e.g. detection_seconds): scenario measurements
    scn.figures.update(gate_figures(scn.checks, scn.recorder.history()))
    scn.finished_at = utc_now()


def finish_not_run(scn: Scenario) -> None:
    """The end of a scenario that could not act (a fault the target or a hook refused, or could not
    reach: harness.faults.refused): no gate is judged and no figure measured, for the fault never
    happened. When an earlier fault of it was injected, or the refused call may have acted anyway (a
    timeout, a 5xx), the steady state is checked again, for the record only."""
    cause = required(scn.not_run, "the fault not run")
    scn.error = scn.error or f"not run: {cause}"
    if (scn.journal.injected() or cause.acted) and not scn.aborted:
        steady_state(scn, "after")
    scn.observe(
        f"Not run: {cause}. No gate was judged and nothing was measured: the fault never "
        f"happened, so this scenario says nothing about the deployment."
    )
    scn.checks, scn.gates = [], []
    scn.finished_at = utc_now()


def standard_rules(scn: Scenario) -> None:
    """The rules every scenario with a fault is held to: RTO, RPO, lost and duplicated writes on what
    its main fault blocks, duplicated events and applies; and every scenario: the availability error
    budget it used (on the harness's own requests), unless a step stated it already."""
    targets = scn.drill.targets
    writer = scn.workload.writer if scn.workload else None
    if scn.recovery is not None and not scn.aborted:
        fault, on = scn.recovery
        scn.expect(waivable(scn.drill, "rto_seconds", lambda target: RtoSeconds(target, fault, on)))
        if on.startswith("apply:"):
            keys = {i["key"] for items in scn.published.values() for i in items}
            scn.expect(
                waivable(
                    scn.drill,
                    "rpo_seconds",
                    lambda target: RpoSeconds(target, fault, writes="publish", read="final_applied"),
                )
            )
            scn.expect(LostWrites(int(targets.get("lost_writes", 0)), writes="publish", read="final_applied"))
            scn.expect(DuplicatedApplies(tuple(scn.published), keys))
        elif writer is not None:
            scn.expect(waivable(scn.drill, "rpo_seconds", lambda target: RpoSeconds(target, fault)))
            scn.expect(LostWrites(int(targets.get("lost_writes", 0))))
            scn.expect(DuplicatedWrites())
    elif scn.recovery is None:
        scn.not_applicable.setdefault(
            "rto_seconds", "no fault of this scenario blocked an operation the harness measures"
        )
    if writer is not None and not scn.aborted:
        scn.expect(DuplicatedEvents())
        published = {o.value for o in scn.recorder.ops(OpKind.PUBLISH) if o.ok}
        if published and platform_log(scn.lab, "intune") is not None:
            scn.expect(DuplicatedApplies(("intune",), published))
    budget = availability_gate(scn)
    if budget not in scn.checks:  # a waived targets.availability is judged against the spec's 0.999 too
        scn.expect(waivable(scn.drill, "availability", lambda target: availability_gate(scn, target)))


def availability_gate(scn: Scenario, target: float | None = None) -> AvailabilityBudget:
    """The scenario's error-budget gate: the one a step stated, else one on the plan's `availability:`
    policy (period, drill allowance, region) and per-window target (`targets.availability`, or
    `target`; the spec's 0.999 when neither says)."""
    for gate in scn.checks:
        if isinstance(gate, AvailabilityBudget):
            return gate
    policy = scn.drill.availability or AvailabilityPolicy()
    if target is None:
        target = float(scn.drill.targets.get("availability", TARGET))
    return AvailabilityBudget(target, policy.period_days, policy.drill_allowance, policy.region)


def restore_link(scn: Scenario, link: str) -> None:
    """Heal the most recent active fault on the named link (the step's words -> the proxy): a
    matrix row's link (harness.matrix.Row.links), a platform's or the replication link."""
    named = links()
    if link in named:
        target = named[link]
    elif link in PLATFORMS:
        target = f"platform-{link}"
    elif link == "replication":
        cut = [e for e in scn.journal.active() if e.label.startswith("partition:replication:")]
        target = (
            cut[-1].fault.spec.target
            if cut
            else scn.lab.part(DatabaseNodes).replication_proxy_name(scn.lab.observer.candidate)
        )
    else:
        raise ValueError(f"unknown link {link!r}; the links are: {', '.join([*named, 'replication', *PLATFORMS])}")
    scn.heal(target=target)
    scn.observe(f"The {link} link restored.")
