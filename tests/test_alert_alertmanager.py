"""Alerts through a real Prometheus Alertmanager (Debian package) on loopback,
with its webhook receivers posting back to a local receiver."""

from __future__ import annotations

import time
from typing import Any

import pytest

from qosmon.alerting.alerter import Alerter, AlertingConfig
from qosmon.alerting.config import RetryPolicy
from qosmon.model import Cause, Evidence, Incident, Severity
from tests.alertmanager_server import ALERTMANAGER_BIN, Request, alertmanager, receiver

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        ALERTMANAGER_BIN is None,
        reason="prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)",
    ),
]


def incident(iid: str, cause: Cause, start: float, end: float | None = None,
             **scope: str) -> Incident:
    return Incident(
        incident_id=iid, show_id="show1", start_ts=start, end_ts=end,
        severity=Severity.WARNING, cause=cause, scope=scope,
        summary=f"{cause.value} seen by 4 of 4 probes",
        evidence=[Evidence(metric="loss_pct", text=f"{cause.value}: observed vs baseline")],
    )


def am_config(url: str) -> AlertingConfig:
    return AlertingConfig.model_validate({
        "pending_s": 0, "group_wait_s": 0, "group_interval_s": 0, "cool_off_s": 0,
        "routes": [{
            "name": "am", "kind": "alertmanager", "url": url,
            "serves": ["oncall", "merchandising"], "resend_s": 30,
            "retry": RetryPolicy(max_attempts=10, initial_backoff_s=0.2).model_dump(),
        }],
    })


def webhook_alerts(requests: list[Request], status: str) -> list[dict[str, Any]]:
    return [a for r in requests for a in r.json()["alerts"] if a["status"] == status]


async def test_alertmanager_groups_routes_and_resolves() -> None:
    async with receiver() as hook, alertmanager(hook.url) as am:
        alerter = Alerter(am_config(am.url), link=lambda s: f"http://qosmon.local/{s}")
        await alerter.start()
        try:
            t0 = time.time()
            loss = incident("i1", Cause.PACKET_LOSS, t0 - 5, region="ID")
            chat = incident("i2", Cause.CHAT_CHANNEL, t0 - 4, region="ID")
            stock = incident("i3", Cause.STOCK_OUT, t0 - 5, region="US")
            queued = await alerter.update("show1", [loss, chat, stock], t0)
            assert len(queued) == 3
            await alerter.flush(10)

            # Alertmanager holds one alert per incident, labelled for routing.
            held = await am.alerts()
            assert sorted(a["labels"]["cause"] for a in held) == [
                "chat_channel", "packet_loss", "stock_out"]
            by_cause = {a["labels"]["cause"]: a for a in held}
            assert by_cause["packet_loss"]["labels"] == {
                "alertname": "QosmonPacketLoss", "show": "show1", "region": "ID",
                "cause": "packet_loss", "severity": "warning", "route": "oncall",
            }
            ann = by_cause["packet_loss"]["annotations"]
            assert ann["evidence"] == "packet_loss: observed vs baseline"
            assert ann["url"] == "http://qosmon.local/show1"
            assert "region ID" in ann["summary"] and "since" in ann["summary"]

            oncall = await hook.wait_for(1, timeout_s=15, path="/oncall")
            merch = await hook.wait_for(1, timeout_s=15, path="/merchandising")
            # The two ID incidents arrive grouped in ONE on-call notification.
            assert len(oncall) == 1
            first = oncall[0].json()
            assert first["status"] == "firing"
            assert first["groupLabels"] == {"show": "show1", "region": "ID", "route": "oncall"}
            assert sorted(a["labels"]["cause"] for a in first["alerts"]) == [
                "chat_channel", "packet_loss"]
            # The stock-out went to merchandising only.
            assert [a["labels"]["cause"] for a in webhook_alerts(merch, "firing")] == [
                "stock_out"]
            assert all(a["labels"]["cause"] != "stock_out"
                       for r in oncall for a in r.json()["alerts"])

            # The incidents end: resolves reach Alertmanager and its receivers.
            t1 = time.time()
            await alerter.update("show1", [
                loss.model_copy(update={"end_ts": t1}), chat.model_copy(update={"end_ts": t1}),
                stock.model_copy(update={"end_ts": t1}),
            ], t1)
            await alerter.flush(10)
            oncall = await hook.wait_for(2, timeout_s=15, path="/oncall")
            assert [r.json()["status"] for r in oncall] == ["firing", "resolved"]
            assert sorted(a["labels"]["cause"] for a in webhook_alerts(oncall, "resolved")) == [
                "chat_channel", "packet_loss"]
            merch = await hook.wait_for(2, timeout_s=15, path="/merchandising")
            assert [r.json()["status"] for r in merch] == ["firing", "resolved"]
            held = await am.alerts()
            assert [a for a in held if a["status"]["state"] == "active"] == []
        finally:
            await alerter.close()


async def test_clean_show_sends_nothing_to_alertmanager() -> None:
    async with receiver() as hook, alertmanager(hook.url) as am:
        alerter = Alerter(am_config(am.url))
        await alerter.start()
        try:
            t0 = time.time()
            for k in range(5):
                assert await alerter.update("show1", [], t0 + k) == []
            # probe_local never pages, even where Alertmanager would route it
            local = incident("p1", Cause.PROBE_LOCAL, t0 - 30, region="ID")
            assert await alerter.update("show1", [local], t0 + 6) == []
            await alerter.flush(5)
            assert await am.alerts() == []
            assert await hook.wait_for(1, timeout_s=2.5) == []
        finally:
            await alerter.close()


async def test_escalation_ends_the_old_label_set() -> None:
    async with receiver() as hook, alertmanager(hook.url) as am:
        cfg = am_config(am.url).model_copy(update={"escalate_after_s": 60})
        alerter = Alerter(cfg)
        await alerter.start()
        try:
            t0 = time.time()
            loss = incident("i1", Cause.PACKET_LOSS, t0 - 10, region="ID")
            await alerter.update("show1", [loss], t0)
            await alerter.flush(5)
            # 70 s later (rules time): severity warning -> critical
            await alerter.update("show1", [loss.model_copy(update={"start_ts": t0 - 80})], t0 + 70)
            await alerter.flush(5)
            held = await am.alerts()
            active = [a["labels"]["severity"] for a in held if a["status"]["state"] == "active"]
            assert active == ["critical"]
        finally:
            await alerter.close()
