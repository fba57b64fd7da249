"""The alerting runtime against real local HTTP receivers: the signed webhook,
retries while a receiver is down, and that update() never waits for them."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from qosmon.alerting import signing
from qosmon.alerting.alerter import Alerter, AlertingConfig
from qosmon.alerting.config import RetryPolicy, RouteConfig
from qosmon.model import AlertDelivery, AlertStatus, Cause, Evidence, Incident, Severity
from tests.alertmanager_server import Receiver, receiver

SECRET = "s3cret-hmac-key-for-tests"
FAST_RETRY = RetryPolicy(max_attempts=30, initial_backoff_s=0.1, max_backoff_s=0.4)


def config(*routes: RouteConfig, **rules: float) -> AlertingConfig:
    timings: dict[str, object] = {"pending_s": 0, "pending_by_cause": {}, "group_wait_s": 0,
                                  "group_interval_s": 0, "cool_off_s": 0}
    timings.update(rules)
    return AlertingConfig.model_validate({"routes": list(routes), **timings})


def webhook(url: str, **kw: object) -> RouteConfig:
    data: dict[str, object] = {"name": "hook", "kind": "webhook", "url": url, "secret": SECRET,
                               "serves": ["oncall"], "timeout_s": 2, "retry": FAST_RETRY}
    data.update(kw)
    return RouteConfig.model_validate(data)


def incident(cause: Cause = Cause.PACKET_LOSS, *, end: float | None = None,
             start: float = 1000.0, **scope: str) -> Incident:
    return Incident(
        incident_id="inc-1", show_id="show1", start_ts=start, end_ts=end,
        severity=Severity.WARNING, cause=cause, scope=scope or {"region": "ID"},
        summary="18% of packets lost on the path to ID viewers",
        evidence=[Evidence(metric="loss_pct", observed=18, baseline=0.2,
                           text="loss 18% vs 0.2% before")],
    )


async def test_webhook_fires_and_resolves_with_valid_signature() -> None:
    async with receiver() as rx:
        alerter = Alerter(config(webhook(rx.url + "/hook")),
                          link=lambda show: f"http://qosmon.local/shows/{show}/live")
        await alerter.start()
        try:
            queued = await alerter.update("show1", [incident()], 1001.0)
            assert [(a.status, a.region) for a in queued] == [(AlertStatus.FIRING, "ID")]
            assert await alerter.update("show1", [incident()], 1002.0) == []  # de-duplicated
            await alerter.update("show1", [incident(end=1003.0)], 1003.0)
            await alerter.flush(10)
        finally:
            await alerter.close()
    assert len(rx.requests) == 2
    for req in rx.requests:
        assert req.path == "/hook"
        assert signing.verify(SECRET, req.headers, req.body, time.time()) is None
        # The delivery id is in the headers and in the body, the same.
        assert req.headers[signing.ID_HEADER] == req.json()["delivery_id"]
        assert req.headers[signing.ID_HEADER].startswith("msg_")
    assert rx.requests[0].headers["webhook-id"] != rx.requests[1].headers["webhook-id"]
    fire, res = (r.json() for r in rx.requests)
    assert fire["status"] == "firing" and res["status"] == "resolved"
    (a,) = fire["alerts"]
    assert a["key"] == "qosmon:show1:ID:*:packet_loss"
    assert (a["show_id"], a["region"], a["cause"], a["route"]) == ("show1", "ID", "packet_loss",
                                                                    "oncall")
    assert a["url"] == "http://qosmon.local/shows/show1/live"
    assert a["evidence"] == "loss 18% vs 0.2% before"
    # what, where, since when, why, link: all in the human text
    for part in ("packet loss", "region ID", "since", "18% of packets lost",
                 "loss 18% vs 0.2% before", "http://qosmon.local/shows/show1/live"):
        assert part in fire["text"]
    assert res["alerts"][0]["ends_at"] == 1003.0


async def test_tampered_stale_or_replayed_body_fails_verification() -> None:
    body = b'{"a":1}'
    h = signing.headers(SECRET, "msg_1", 1000, body)
    assert signing.verify(SECRET, h, body, 1000.0) is None
    assert signing.verify(SECRET, h, body + b" ", 1000.0) == "signature does not match"
    assert signing.verify("other", h, body, 1000.0) == "signature does not match"
    # The id is signed: the same body and signature under another id fail.
    assert signing.verify(SECRET, {**h, "webhook-id": "msg_2"}, body, 1000.0) == \
        "signature does not match"
    assert "more than" in (signing.verify(SECRET, h, body, 2000.0) or "")
    assert signing.verify(SECRET, {"webhook-id": "msg_1"}, body, 1000.0) is not None
    # Header names are case-insensitive; several signatures may be listed.
    upper = {k.upper(): v for k, v in h.items()}
    upper["WEBHOOK-SIGNATURE"] = "v1,bm90IGl0 " + upper["WEBHOOK-SIGNATURE"]
    assert signing.verify(SECRET, upper, body, 1000.0) is None


def test_signature_is_standard_webhooks_for_a_whsec_secret() -> None:
    # The example of the Standard Webhooks specification, computed by hand
    # with HMAC-SHA256 of "id.timestamp.body" under the base64-decoded key.
    import base64
    import hashlib
    import hmac

    key = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    body = b'{"test": 2432232314}'
    sig = signing.sign(f"whsec_{key}", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    mac = hmac.new(b"0123456789abcdef0123456789abcdef",
                   b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + body, hashlib.sha256)
    assert sig == "v1," + base64.b64encode(mac.digest()).decode()


def test_seen_deliveries_drops_duplicates_within_its_bound() -> None:
    seen = signing.SeenDeliveries(capacity=2)
    assert seen.first_time("a") and seen.first_time("b")
    assert not seen.first_time("a")
    assert seen.first_time("c")  # "b" (least recently seen) is forgotten
    assert seen.first_time("b") and not seen.first_time("c")


async def test_receiver_down_is_retried_and_update_never_blocks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    rx = Receiver()  # not listening yet: connection refused
    log: list[AlertDelivery] = []
    alerter = Alerter(config(webhook(rx.url + "/hook/" + SECRET)), on_delivery=log.append)
    await alerter.start()
    try:
        worst = 0.0
        for k in range(15):  # 1.5 s of once-a-"second" ticks while the receiver is down
            t0 = time.perf_counter()
            await alerter.update("show1", [incident()], 1001.0 + k)
            worst = max(worst, time.perf_counter() - t0)
            await asyncio.sleep(0.1)
        assert worst < 0.1, f"update() took {worst:.3f} s"
        assert rx.requests == []
        await rx.start()
        try:
            got = await rx.wait_for(1, timeout_s=10)
            await alerter.flush(5)
        finally:
            await rx.stop()
    finally:
        await alerter.close()
    assert len(got) == 1 and got[0].json()["alerts"][0]["status"] == "firing"
    failed = [d for d in log if not d.ok]
    assert failed and all("cannot connect to http://127.0.0.1:" in d.error for d in failed)
    assert [d.attempt for d in log] == list(range(1, len(log) + 1))
    assert log[-1].ok and log[-1].notifier == "hook"
    # The secret in the URL path and the HMAC key appear nowhere in logs.
    everything = caplog.text + "".join(d.error for d in log)
    assert SECRET not in everything
    assert "retrying in" in caplog.text


async def test_server_error_is_retried_client_error_is_not() -> None:
    async with receiver(status={"/hook": 503}) as rx:
        log: list[AlertDelivery] = []
        alerter = Alerter(config(webhook(rx.url + "/hook")), on_delivery=log.append)
        await alerter.start()
        try:
            await alerter.update("show1", [incident()], 1001.0)
            for _ in range(100):  # until the second failed attempt is logged
                if len(log) >= 2:
                    break
                await asyncio.sleep(0.05)
            rx.status["/hook"] = 200
            await alerter.flush(10)
            assert len(rx.requests) == 1
            assert [d.ok for d in log][-1] and "HTTP 503" in log[0].error

            rx.status["/hook"] = 400
            log.clear()
            await alerter.update("show1", [incident(), incident(cause=Cause.HIGH_LATENCY)], 1002.0)
            await alerter.flush(10)
            assert [(d.ok, d.attempt) for d in log] == [(False, 1)]
            assert "HTTP 400" in log[0].error
        finally:
            await alerter.close()


async def test_slow_receiver_times_out_and_does_not_hold_other_routes() -> None:
    async with receiver(delay_s=1.5) as slow, receiver() as fast:
        slow_route = webhook(slow.url, name="slow", timeout_s=0.6,
                             retry=RetryPolicy(max_attempts=1))
        alerter = Alerter(config(slow_route, webhook(fast.url, name="fast")))
        await alerter.start()
        try:
            t0 = time.perf_counter()
            await alerter.update("show1", [incident()], 1001.0)
            assert time.perf_counter() - t0 < 0.1
            got = await fast.wait_for(1, timeout_s=5)
            assert len(got) == 1
            # The fast route delivered while the slow one was still waiting.
            assert [d for d in alerter.deliveries if d.notifier == "slow"] == []
            await alerter.flush(5)
            slow_log = [d for d in alerter.deliveries if d.notifier == "slow"]
            assert [d.ok for d in slow_log] == [False]
            assert "no answer from http://127.0.0.1:" in slow_log[0].error
            assert "within 0.6 s" in slow_log[0].error
        finally:
            await alerter.close()


async def test_stock_out_goes_to_merchandising_route_only() -> None:
    async with receiver() as rx:
        alerter = Alerter(config(
            webhook(rx.url + "/oncall", name="oncall"),
            webhook(rx.url + "/merch", name="merch", serves=["merchandising"]),
        ))
        await alerter.start()
        try:
            out = incident(Cause.STOCK_OUT, region="US")
            await alerter.update("show1", [out], 1001.0)
            await alerter.update("show1", [out, incident(Cause.PROBE_LOCAL, region="US")], 1002.0)
            await alerter.flush(5)
        finally:
            await alerter.close()
    assert [r.path for r in rx.requests] == ["/merch"]
    assert rx.requests[0].json()["alerts"][0]["cause"] == "stock_out"


async def test_show_end_resolves_open_alerts() -> None:
    async with receiver() as rx:
        alerter = Alerter(config(webhook(rx.url), cool_off_s=600))
        await alerter.start()
        try:
            await alerter.update("show1", [incident()], 1001.0)
            queued = await alerter.end_show("show1", 1010.0)
            assert [a.status for a in queued] == [AlertStatus.RESOLVED]
            await alerter.flush(5)
        finally:
            await alerter.close()
    assert [r.json()["status"] for r in rx.requests] == ["firing", "resolved"]
