"""The alert rules, driven second by second without an event loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qosmon.alerting.rules import (
    AlertRules,
    Notification,
    RuleSettings,
    alert_severity,
    route_for,
)
from qosmon.model import Alert, AlertStatus, Cause, Evidence, Incident, Severity, alert_key

T0 = 1_700_000_000.0
SETTINGS = RuleSettings(
    pending_s=3, group_wait_s=2, group_interval_s=5, repeat_interval_s=60, cool_off_s=10,
    escalate_after_s=120,
)


def incident(
    iid: str, cause: Cause, start: float, *, end: float | None = None,
    severity: Severity = Severity.WARNING, show: str = "show1", **scope: str,
) -> Incident:
    return Incident(
        incident_id=iid, show_id=show, start_ts=start, end_ts=end, severity=severity,
        cause=cause, scope=scope, summary=f"{cause.value} in {scope or 'the show'}",
        evidence=[Evidence(metric="loss_pct", observed=12.0, text=f"evidence of {iid}"),
                  Evidence(metric="rtt_ms", text="second line, not shown")],
    )


def run(
    rules: AlertRules, timeline: Mapping[float, Sequence[Incident]], until: float,
    show: str = "show1", start: float = T0,
) -> list[tuple[float, Notification]]:
    """Tick once a second; the incident list is the latest entry at or before t."""
    out: list[tuple[float, Notification]] = []
    current: Sequence[Incident] = []
    t = start
    while t <= until:
        for at in sorted(timeline):
            if at <= t:
                current = timeline[at]
        out += [(t, n) for n in rules.evaluate(show, current, t)]
        t += 1.0
    return out


def alerts_of(sent: list[tuple[float, Notification]]) -> list[tuple[float, Alert]]:
    return [(t, a) for t, n in sent for a in n.alerts]


def test_clean_show_sends_nothing() -> None:
    rules = AlertRules(SETTINGS)
    assert run(rules, {T0: []}, T0 + 600) == []
    assert rules.open_alerts() == []


def test_one_alert_per_incident_fires_then_resolves_once() -> None:
    rules = AlertRules(SETTINGS)
    loss = incident("i1", Cause.PACKET_LOSS, T0, region="ID")
    ended = loss.model_copy(update={"end_ts": T0 + 30})
    sent = alerts_of(run(rules, {T0: [loss], T0 + 30: [ended]}, T0 + 100))
    assert [(a.status, a.key) for _, a in sent] == [
        (AlertStatus.FIRING, "qosmon:show1:ID:*:packet_loss"),
        (AlertStatus.RESOLVED, "qosmon:show1:ID:*:packet_loss"),
    ]
    (t_fire, fire), (t_res, res) = sent
    # pending 3 s, then group_wait 2 s
    assert t_fire == T0 + 5
    assert (fire.region, fire.node, fire.cause, fire.route) == ("ID", "", Cause.PACKET_LOSS,
                                                               "oncall")
    assert fire.starts_at == T0 and fire.ends_at is None
    assert fire.evidence == "evidence of i1"
    assert fire.incident_id == "i1"
    # cool-off 10 s after the end; ends_at is the real end, not the send time
    assert t_res == T0 + 40
    assert res.ends_at == T0 + 30


def test_incident_dropped_from_list_counts_as_ended() -> None:
    rules = AlertRules(SETTINGS)
    loss = incident("i1", Cause.PACKET_LOSS, T0, region="ID")
    sent = alerts_of(run(rules, {T0: [loss], T0 + 20: []}, T0 + 60))
    assert [a.status for _, a in sent] == [AlertStatus.FIRING, AlertStatus.RESOLVED]
    assert sent[1][1].ends_at == T0 + 20


def test_pending_short_incident_never_fires() -> None:
    rules = AlertRules(SETTINGS)
    blip = incident("i1", Cause.PACKET_LOSS, T0, region="ID")
    over = blip.model_copy(update={"end_ts": T0 + 2})
    assert run(rules, {T0: [blip], T0 + 2: [over]}, T0 + 60) == []


def test_pending_counts_from_onset_so_a_late_detection_fires_at_once() -> None:
    # Detection back-dates start_ts to the onset; the alert should not add its
    # own pending on top of the detector's debounce.
    rules = AlertRules(SETTINGS)
    late = incident("i1", Cause.BANDWIDTH, T0 - 8, region="US")
    sent = run(rules, {T0: [late]}, T0 + 10)
    assert [t for t, _ in sent] == [T0 + SETTINGS.group_wait_s]


def test_grouping_incidents_of_one_region_share_one_notification() -> None:
    rules = AlertRules(SETTINGS)
    a = incident("i1", Cause.PACKET_LOSS, T0, region="ID")
    b = incident("i2", Cause.CHAT_CHANNEL, T0 + 1, region="ID")
    other = incident("i3", Cause.HIGH_LATENCY, T0 + 1, region="US")
    sent = run(rules, {T0: [a], T0 + 1: [a, b, other]}, T0 + 30)
    assert len(sent) == 2
    by_region = {n.region: n for _, n in sent}
    assert sorted(x.cause for x in by_region["ID"].alerts) == [Cause.CHAT_CHANNEL,
                                                               Cause.PACKET_LOSS]
    assert [x.cause for x in by_region["US"].alerts] == [Cause.HIGH_LATENCY]
    assert by_region["ID"].group_key == "qosmon:show1:ID:oncall"


def test_late_joiner_waits_for_group_interval() -> None:
    rules = AlertRules(SETTINGS)
    a = incident("i1", Cause.PACKET_LOSS, T0, region="ID")
    b = incident("i2", Cause.CHAT_CHANNEL, T0 + 6, region="ID")
    sent = run(rules, {T0: [a], T0 + 6: [a, b]}, T0 + 30)
    assert [(t - T0, [x.cause for x in n.alerts]) for t, n in sent] == [
        (5, [Cause.PACKET_LOSS]),
        (10, [Cause.CHAT_CHANNEL]),  # ripe at 9, group last sent at 5 -> 10
    ]


def test_dedup_and_repeat_interval() -> None:
    rules = AlertRules(SETTINGS.model_copy(update={"escalate_after_s": 1000}))
    a = incident("i1", Cause.PACKET_LOSS, T0, region="ID")
    sent = alerts_of(run(rules, {T0: [a]}, T0 + 150))
    # first at 5, then every repeat_interval (60 s), nothing in between
    assert [t - T0 for t, _ in sent] == [5, 65, 125]
    assert all(x.status == AlertStatus.FIRING for _, x in sent)
    assert len({x.key for _, x in sent}) == 1


def test_same_incidents_reported_twice_per_tick_do_not_duplicate() -> None:
    rules = AlertRules(SETTINGS)
    a = incident("i1", Cause.PACKET_LOSS, T0, region="ID")
    a_again = incident("i1-redetected", Cause.PACKET_LOSS, T0 + 0.5, region="ID")
    sent = alerts_of(run(rules, {T0: [a, a_again]}, T0 + 30))
    assert len(sent) == 1


def test_flapping_reopens_the_same_alert_without_a_new_page() -> None:
    rules = AlertRules(SETTINGS)
    timeline: dict[float, Sequence[Incident]] = {}
    # on 6 s, off 4 s (< cool_off 10 s), five times, each a new incident id
    for k in range(5):
        start = T0 + 10 * k
        timeline[start] = [incident(f"i{k}", Cause.PACKET_LOSS, start, region="ID")]
        timeline[start + 6] = [timeline[start][0].model_copy(update={"end_ts": start + 6})]
    sent = alerts_of(run(rules, timeline, T0 + 80))
    assert [x.status for _, x in sent] == [AlertStatus.FIRING, AlertStatus.RESOLVED]
    fire, res = sent[0][1], sent[1][1]
    assert fire.key == res.key
    assert res.starts_at == T0
    assert res.ends_at == T0 + 46  # the last flap's end


def test_severity_from_scope_and_duration() -> None:
    assert alert_severity(Severity.INFO, "", "", 0, 120) == Severity.CRITICAL
    assert alert_severity(Severity.INFO, "ID", "", 0, 120) == Severity.WARNING
    assert alert_severity(Severity.INFO, "ID", "jkt-1", 0, 120) == Severity.INFO
    assert alert_severity(Severity.INFO, "ID", "jkt-1", 130, 120) == Severity.WARNING
    assert alert_severity(Severity.WARNING, "ID", "", 130, 120) == Severity.CRITICAL
    assert alert_severity(Severity.CRITICAL, "ID", "jkt-1", 0, 120) == Severity.CRITICAL


def test_escalation_is_sent_once_when_severity_rises() -> None:
    rules = AlertRules(SETTINGS.model_copy(update={"repeat_interval_s": 1000}))
    a = incident("i1", Cause.PACKET_LOSS, T0, region="ID", edge_node="jkt-1",
                 severity=Severity.INFO)
    sent = alerts_of(run(rules, {T0: [a]}, T0 + 300))
    assert [(t - T0, x.severity) for t, x in sent] == [(5, Severity.INFO),
                                                      (120, Severity.WARNING)]
    assert sent[0][1].node == "jkt-1"


def test_node_failure_inhibits_the_symptoms_it_explains() -> None:
    rules = AlertRules(SETTINGS)
    down = incident("n1", Cause.NODE_FAILURE, T0, severity=Severity.CRITICAL,
                    region="ID", edge_node="jkt-1")
    symptoms = [
        incident("s1", Cause.PACKET_LOSS, T0, region="ID", edge_node="jkt-1"),
        incident("s2", Cause.CHAT_CHANNEL, T0, region="ID"),
        incident("s3", Cause.UNKNOWN, T0, region="ID", edge_node="jkt-1"),
    ]
    elsewhere = incident("s4", Cause.PACKET_LOSS, T0, region="US")
    other_node = incident("s5", Cause.HIGH_LATENCY, T0, region="ID", edge_node="jkt-2")
    sent = alerts_of(run(rules, {T0: [down, *symptoms, elsewhere, other_node]}, T0 + 30))
    assert sorted((x.region, x.node, x.cause.value) for _, x in sent) == [
        ("ID", "jkt-1", "node_failure"),
        ("ID", "jkt-2", "high_latency"),
        ("US", "", "packet_loss"),
    ]


def test_origin_failure_inhibits_every_stream_symptom_but_not_merchandising() -> None:
    rules = AlertRules(SETTINGS)
    origin = incident("o1", Cause.NODE_FAILURE, T0, severity=Severity.CRITICAL)
    symptoms = [incident(f"s{r}", Cause.BANDWIDTH, T0, region=r) for r in ("ID", "US", "DE")]
    stock = incident("k1", Cause.STOCK_OUT, T0, region="US")
    sent = alerts_of(run(rules, {T0: [origin, *symptoms, stock]}, T0 + 30))
    assert sorted((x.cause.value, x.route) for _, x in sent) == [
        ("node_failure", "oncall"), ("stock_out", "merchandising"),
    ]
    assert next(x for _, x in sent if x.cause == Cause.NODE_FAILURE).severity == \
        Severity.CRITICAL


def test_symptom_already_sent_is_still_resolved_after_inhibition() -> None:
    rules = AlertRules(SETTINGS)
    loss = incident("s1", Cause.PACKET_LOSS, T0, region="ID")
    down = incident("n1", Cause.NODE_FAILURE, T0 + 10, region="ID", edge_node="jkt-1")
    timeline = {T0: [loss], T0 + 10: [loss, down], T0 + 40: []}
    sent = run(rules, timeline, T0 + 80)
    assert [sorted((x.cause.value, x.status.value) for x in n.alerts) for _, n in sent] == [
        [("packet_loss", "firing")],
        [("node_failure", "firing")],
        [("node_failure", "resolved"), ("packet_loss", "resolved")],
    ]


def test_stock_causes_route_to_merchandising_never_oncall() -> None:
    for cause in (Cause.STOCK_OUT, Cause.LOW_STOCK, Cause.STALE_INVENTORY, Cause.NETWORK_FINE):
        assert route_for(cause) == "merchandising"
    for cause in (Cause.NODE_FAILURE, Cause.BANDWIDTH, Cause.PACKET_LOSS, Cause.HIGH_LATENCY,
                  Cause.CHAT_CHANNEL, Cause.UNKNOWN):
        assert route_for(cause) == "oncall"
    rules = AlertRules(SETTINGS)
    out = incident("k1", Cause.STOCK_OUT, T0, region="US")
    sent = run(rules, {T0: [out]}, T0 + 30)
    assert [(n.route, n.group_key) for _, n in sent] == [
        ("merchandising", "qosmon:show1:US:merchandising")
    ]


def test_probe_local_never_pages() -> None:
    rules = AlertRules(SETTINGS)
    local = incident("p1", Cause.PROBE_LOCAL, T0, severity=Severity.CRITICAL, region="ID")
    assert route_for(Cause.PROBE_LOCAL) is None
    assert run(rules, {T0: [local]}, T0 + 200) == []


def test_over_before_group_wait_is_not_paged() -> None:
    rules = AlertRules(SETTINGS.model_copy(update={"group_wait_s": 10}))
    a = incident("i1", Cause.PACKET_LOSS, T0, region="ID")
    sent = run(rules, {T0: [a], T0 + 6: [a.model_copy(update={"end_ts": T0 + 6})]}, T0 + 60)
    assert sent == []
    assert rules.open_alerts() == []


def test_show_end_resolves_everything_at_once() -> None:
    rules = AlertRules(SETTINGS)
    a = incident("i1", Cause.PACKET_LOSS, T0, region="ID")
    run(rules, {T0: [a]}, T0 + 10)
    out = rules.evaluate("show1", [a], T0 + 11, show_ended=True)
    assert [(x.status, x.ends_at) for n in out for x in n.alerts] == [
        (AlertStatus.RESOLVED, T0 + 11)
    ]
    assert rules.open_alerts() == []


def test_shows_are_independent() -> None:
    rules = AlertRules(SETTINGS)
    a = incident("i1", Cause.PACKET_LOSS, T0, region="ID", show="A")
    b = incident("i1", Cause.PACKET_LOSS, T0, region="ID", show="B")
    sent_a = run(rules, {T0: [a]}, T0 + 10, show="A")
    sent_b = run(rules, {T0: [b]}, T0 + 10, show="B")
    assert [n.show_id for _, n in sent_a] == ["A"]
    assert [n.show_id for _, n in sent_b] == ["B"]
    # An incident of another show passed by mistake is ignored.
    assert rules.evaluate("A", [b], T0 + 11) == []
    assert alert_key("A", "ID", "", Cause.PACKET_LOSS) != alert_key("B", "ID", "",
                                                                     Cause.PACKET_LOSS)


def test_lingering_old_incident_does_not_backdate_a_new_alerts_end() -> None:
    rules = AlertRules(SETTINGS)
    old = incident("i1", Cause.PACKET_LOSS, T0, end=T0 + 10, region="ID")
    new = incident("i2", Cause.PACKET_LOSS, T0 + 100, region="ID")
    sent = alerts_of(run(rules, {T0: [old], T0 + 100: [old, new], T0 + 130: [old]},
                         T0 + 160, start=T0 + 20))
    assert [(x.status, x.starts_at) for _, x in sent] == [
        (AlertStatus.FIRING, T0 + 100), (AlertStatus.RESOLVED, T0 + 100)]
    assert sent[1][1].ends_at == T0 + 130


def test_tick_jitter_does_not_hold_a_page_back_a_second() -> None:
    # Ticks land a few ms after each whole second, never exactly 1 s apart:
    # the group wait that ends 2 ms after a tick is over at that tick.
    rules = AlertRules(SETTINGS)
    inc = [incident("i1", Cause.PACKET_LOSS, T0, region="ID")]
    assert rules.evaluate("show1", inc, T0 + 3.004) == []  # ripe: group wait starts
    assert rules.evaluate("show1", inc, T0 + 4.001) == []
    [n] = rules.evaluate("show1", inc, T0 + 5.002)
    assert [a.status for a in n.alerts] == [AlertStatus.FIRING]


def test_high_latency_waits_longer_than_a_broken_stream() -> None:
    rules = AlertRules(RuleSettings(pending_s=2, group_wait_s=0, group_interval_s=5,
                                    repeat_interval_s=60, cool_off_s=10,
                                    escalate_after_s=120,
                                    pending_by_cause={Cause.HIGH_LATENCY: 10}))
    slow = [incident("i1", Cause.HIGH_LATENCY, T0, region="ID")]
    broken = [incident("i2", Cause.NODE_FAILURE, T0, region="DE", edge_node="fra-1")]
    sent = alerts_of(run(rules, {T0: slow + broken}, T0 + 12))
    first = {a.cause: t - T0 for t, a in sent}
    assert first == {Cause.NODE_FAILURE: 2.0, Cause.HIGH_LATENCY: 10.0}


def test_a_brief_latency_rise_pages_nobody() -> None:
    rules = AlertRules(RuleSettings())  # the shipped defaults
    blip = incident("i1", Cause.HIGH_LATENCY, T0, region="ID")
    over = blip.model_copy(update={"end_ts": T0 + 8})
    assert run(rules, {T0: [blip], T0 + 8: [over]}, T0 + 60) == []


def test_exported_state_restored_elsewhere_neither_repeats_nor_forgets() -> None:
    import json

    first = AlertRules(SETTINGS)
    loss = incident("inc-1", Cause.PACKET_LOSS, T0, region="ID")
    other = incident("inc-2", Cause.HIGH_LATENCY, T0, show="show2", region="TH")
    sent = run(first, {T0: [loss]}, T0 + 20)
    run(first, {T0: [other]}, T0 + 20, show="show2")
    assert [a.status for _, a in alerts_of(sent)] == [AlertStatus.FIRING]
    saved = json.loads(json.dumps(first.export_show("show1")))  # as the store keeps it

    second = AlertRules(SETTINGS)  # the restarted collector
    second.restore_show("show1", saved)
    assert [a.key for a in second.open_alerts()] == [a.key for a in first.open_alerts("show1")]
    # Still open: nothing new. Ended: one resolve, dated by the incident.
    again = run(second, {T0 + 21: [loss], T0 + 30: [loss.model_copy(update={"end_ts": T0 + 30})]},
                T0 + 60, start=T0 + 21)
    assert [(a.status, a.ends_at, a.incident_id) for _, a in alerts_of(again)] == [
        (AlertStatus.RESOLVED, T0 + 30, "inc-1")]
    # The other show's state is not part of show1's.
    assert {a.show_id for a in second.open_alerts()} == set()
    second.restore_show("show1", {})
    assert second.open_alerts() == []
