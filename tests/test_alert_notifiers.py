"""Each notifier's wire format, as a local receiver of that kind sees it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from qosmon.alerting.alerter import Alerter, AlertingConfig
from qosmon.model import Cause, Evidence, Incident, Severity
from tests.alertmanager_server import receiver

ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"


def config(route: dict[str, Any], **rules: float) -> AlertingConfig:
    timings: dict[str, float] = {"pending_s": 0, "group_wait_s": 0, "group_interval_s": 0,
                                 "cool_off_s": 0}
    timings.update(rules)
    route = {"retry": {"max_attempts": 3, "initial_backoff_s": 0.1}, **route}
    return AlertingConfig.model_validate({"routes": [route], **timings})


def incidents(now: float, end: float | None = None) -> list[Incident]:
    def one(iid: str, cause: Cause, **scope: str) -> Incident:
        return Incident(
            incident_id=iid, show_id="show1", start_ts=now - 20, end_ts=end,
            severity=Severity.INFO, cause=cause, scope=scope,
            summary=f"{cause.value} <on> the path & more",
            evidence=[Evidence(metric="loss_pct", text=f"{cause.value} 3x baseline")],
        )
    return [one("i1", Cause.BANDWIDTH, region="DE", edge_node="fra-1"),
            one("i2", Cause.HIGH_LATENCY, region="DE")]


async def test_slack_incoming_webhook_format() -> None:
    async with receiver() as rx:
        path = "/services/T000/B000/XXXXXXXXSECRET"
        alerter = Alerter(config({"name": "slack", "kind": "slack", "url": rx.url + path}),
                          link=lambda s: f"https://qosmon.example/{s}")
        await alerter.start()
        try:
            now = time.time()
            await alerter.update("show1", incidents(now), now)
            await alerter.update("show1", incidents(now, end=now + 1), now + 1)
            await alerter.flush(5)
        finally:
            await alerter.close()
    fire, res = (r.json() for r in rx.requests)
    assert rx.requests[0].path == path
    assert set(fire) == {"text", "blocks"}
    assert "high latency - show show1, region DE" in fire["text"]
    assert "(+1 more)" in fire["text"]
    header = fire["blocks"][0]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert "show1 / DE" in header["text"]["text"] and "firing" in header["text"]["text"]
    sections = [b["text"]["text"] for b in fire["blocks"] if b["type"] == "section"]
    assert len(sections) == 2
    bw = next(s for s in sections if "bandwidth" in s)
    assert "node fra-1" in bw and "region DE" in bw and "since" in bw
    assert "&lt;on&gt; the path &amp; more" in bw  # Slack escaping
    assert "_evidence:_ bandwidth 3x baseline" in bw
    assert "<https://qosmon.example/show1|live view / report>" in bw
    assert "resolved" in res["blocks"][0]["text"]["text"]
    assert all("RESOLVED" in b["text"]["text"] for b in res["blocks"] if b["type"] == "section")


async def test_pagerduty_events_v2_trigger_and_resolve() -> None:
    async with receiver() as rx:
        alerter = Alerter(config({"name": "pd", "kind": "pagerduty",
                                  "url": rx.url + "/v2/enqueue", "routing_key": ROUTING_KEY}),
                          link=lambda s: f"https://qosmon.example/{s}")
        await alerter.start()
        try:
            now = time.time()
            await alerter.update("show1", incidents(now), now)
            await alerter.update("show1", incidents(now), now + 1)  # de-duplicated: nothing
            await alerter.update("show1", incidents(now, end=now + 2), now + 2)
            await alerter.flush(5)
        finally:
            await alerter.close()
    events = [r.json() for r in rx.requests]
    assert [e["event_action"] for e in events] == ["trigger", "trigger", "resolve", "resolve"]
    triggers, resolves = events[:2], events[2:]
    assert {e["dedup_key"] for e in triggers} == {e["dedup_key"] for e in resolves} == {
        "qosmon:show1:DE:fra-1:bandwidth", "qosmon:show1:DE:*:high_latency"}
    assert all(e["routing_key"] == ROUTING_KEY for e in events)
    bw = next(e for e in triggers if e["dedup_key"].endswith("bandwidth"))
    p = bw["payload"]
    assert p["severity"] == "info"  # one node, short: the scope floor
    assert p["source"] == "qosmon/show1/DE" and p["component"] == "fra-1"
    assert p["class"] == "bandwidth" and p["group"] == "DE"
    assert "node fra-1" in p["summary"] and len(p["summary"]) <= 1024
    assert p["custom_details"]["evidence"] == "bandwidth 3x baseline"
    assert p["timestamp"].endswith("Z")
    assert bw["links"] == [{"href": "https://qosmon.example/show1", "text": "live view / report"}]
    hl = next(e for e in triggers if e["dedup_key"].endswith("high_latency"))
    assert hl["payload"]["severity"] == "warning"  # region-wide
    assert set(resolves[0]) == {"routing_key", "event_action", "dedup_key"}


async def test_pagerduty_rejection_does_not_leak_routing_key() -> None:
    async with receiver(status={"/v2/enqueue": 400}) as rx:
        alerter = Alerter(config({"name": "pd", "kind": "pagerduty",
                                  "url": rx.url + "/v2/enqueue", "routing_key": ROUTING_KEY}))
        await alerter.start()
        try:
            now = time.time()
            await alerter.update("show1", incidents(now)[:1], now)
            await alerter.flush(5)
        finally:
            await alerter.close()
    (entry,) = alerter.deliveries
    assert not entry.ok and "HTTP 400" in entry.error and ROUTING_KEY not in entry.error
    assert ROUTING_KEY not in repr(alerter.config)


async def test_alertmanager_route_reposts_firing_alerts() -> None:
    # Alertmanager forgets alerts that are not re-posted; the route keeps
    # them alive with a lease, and stops once resolved.
    async with receiver() as rx:
        alerter = Alerter(config({"name": "am", "kind": "alertmanager", "url": rx.url,
                                  "resend_s": 0.3}))
        await alerter.start()
        try:
            now = time.time()
            await alerter.update("show1", incidents(now)[:1], now)
            got = await rx.wait_for(3, timeout_s=5)
            bodies = [r.json() for r in got]
            assert all(r.path == "/api/v2/alerts" for r in got)
            assert all(len(b) == 1 and b[0]["labels"]["cause"] == "bandwidth" for b in bodies)
            assert bodies[0][0]["endsAt"] > bodies[0][0]["startsAt"]
            await alerter.update("show1", [], now + 1)
            await alerter.flush(5)
            n = len(rx.requests)
            assert rx.requests[-1].json()[0]["endsAt"] < bodies[0][0]["endsAt"]
            await rx.wait_for(n + 1, timeout_s=1.0)
            assert len(rx.requests) == n
        finally:
            await alerter.close()


async def test_route_in_chinese_with_local_times() -> None:
    """A route read in China: the message frame in Chinese, each time in UTC
    with the viewers' local time next to it; the receiver gets it as sent."""
    async with receiver() as rx:
        alerter = Alerter(config({"name": "slack-cn", "kind": "slack", "url": rx.url + "/hook",
                                  "language": "zh"}),
                          link=lambda s: f"https://qosmon.example/{s}")
        await alerter.start()
        try:
            now = time.time()
            await alerter.update("show1", incidents(now)[:1], now)
            await alerter.update("show1", incidents(now, end=now + 65)[:1], now + 65)
            await alerter.flush(5)
        finally:
            await alerter.close()
    fire, res = (r.json() for r in rx.requests)
    assert fire["text"].startswith("[提示] 带宽不足 - 直播 show1，地区 DE，节点 fra-1 - 自 ")
    start = datetime.fromtimestamp(now - 20, UTC)
    local = start.astimezone(ZoneInfo("Europe/Berlin"))
    assert (f"{start:%H:%M:%S} UTC ({local:%H:%M:%S} Europe/Berlin)") in fire["text"]
    section = next(b["text"]["text"] for b in fire["blocks"] if b["type"] == "section")
    assert "_证据:_ bandwidth 3x baseline" in section
    assert "|实时页面 / 报告>" in section
    assert res["text"].startswith("已恢复 带宽不足")
    assert "(1 分 25 秒)" in res["text"]
