"""The Control Plane's platform state machine (pure): health, PromotionsPaused, the CAB pause
after 15 minutes, GraphThrottleCount <= 5 before resuming, the SCCM fallback after 24 hours."""

from __future__ import annotations

import datetime as dt

from controlplane import platformstate as ps

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def types(events) -> list[str]:
    return [t for t, _ in events]


def test_a_throttled_platform_is_degraded_paused_and_recovers_with_one_event_each_way():
    s, ev = ps.observe(ps.Status("intune"), "throttled", at(0))
    assert s.health == "Degraded" and s.degraded_since == at(0) and types(ev) == ["PlatformDegraded"]
    s, ev = ps.observe(s, "throttled", at(1))
    assert ev == [] and s.degraded_since == at(0)
    assert ps.view(s, 2, at(1))["PromotionsPaused"] is True
    s, ev = ps.observe(s, "ok", at(10))
    assert s.health == "Healthy" and types(ev) == ["PlatformRecovered"] and ev[0][1]["degraded_for_s"] == 10
    assert ps.view(s, 2, at(10))["PromotionsPaused"] is False


def test_promotions_stay_paused_while_the_throttle_count_is_above_five():
    s, _ = ps.observe(ps.Status("intune"), "ok", at(0))
    paused = ps.view(s, 6, at(0))
    assert paused["PromotionsPaused"] and paused["GraphThrottleCount"] == 6
    assert not ps.view(s, 5, at(0))["PromotionsPaused"]


def test_intune_degraded_for_more_than_15_minutes_raises_one_cab_pause_lifted_only_when_healthy():
    s, _ = ps.observe(ps.Status("intune"), "throttled", at(0))
    assert ps.tick(s, at(15 * 60)) == (s, [])  # exactly 15 min: not yet
    s, ev = ps.tick(s, at(15 * 60 + 1))
    assert types(ev) == ["CabManualPauseRaised", "CabNotification"] and s.cab_pause_since == at(901)
    assert ps.tick(s, at(2000))[1] == []  # raised once
    assert ps.lift_pause(s, 0)[1] == "intune is Degraded"
    s, _ = ps.observe(s, "ok", at(2000))
    assert ps.view(s, 0, at(2000))["pause_reasons"] == ["CAB manual pause not lifted"]
    assert ps.lift_pause(s, 6)[1] == "GraphThrottleCount = 6 > 5"
    lifted, why = ps.lift_pause(s, 0)
    assert why is None and not ps.view(lifted, 0, at(2000))["PromotionsPaused"]


def test_other_platforms_never_raise_the_cab_pause():
    s, _ = ps.observe(ps.Status("landscape"), "error", at(0))
    assert types(ps.tick(s, at(10 * 3600))[1]) == []


def test_jamf_outage_notifies_the_cab_and_sccm_records_its_site_outage():
    assert types(ps.observe(ps.Status("jamf"), "unreachable", at(0))[1]) == ["PlatformDegraded", "CabNotification"]
    s, ev = ps.observe(ps.Status("sccm"), "timeout", at(0))
    assert types(ev) == ["PlatformDegraded", "SiteOutageRecorded"] and s.health == "Down"
    view = ps.view(s, 0, at(1))
    assert view["SiteHealth"] == "Down" and view["gate"] == "SCCM.SiteHealth" and view["fallback"] is None


def test_sccm_manual_import_is_offered_after_24_hours_down_and_withdrawn_on_recovery():
    s, _ = ps.observe(ps.Status("sccm"), "unreachable", at(0))
    assert ps.tick(s, at(24 * 3600))[1] == []
    s, ev = ps.tick(s, at(24 * 3600 + 1))
    assert types(ev) == ["ManualImportOffered"] and ps.view(s, 0, at(90000))["fallback"] == "manual-import"
    s, _ = ps.observe(s, "ok", at(90000))
    assert ps.view(s, 0, at(90000))["fallback"] is None and s.health == "Healthy"


def test_a_rejected_or_dead_lettered_intent_says_nothing_about_the_platforms_health():
    s = ps.Status("intune")
    for outcome in ("rejected", "dead_lettered"):
        assert ps.observe(s, outcome, at(0)) == (s, [])
