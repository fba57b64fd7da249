"""A show's life in the live pipeline beyond the happy path: it ends by
itself when no end call comes, samples that arrive before their show are
counted and still diagnosed, and /healthz says when live analysis is not
well."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from qosmon.alerting.alerter import Alerter
from qosmon.collector.app import start_collector
from qosmon.collector.config import CollectorConfig
from qosmon.live import LivePipeline, LiveSettings
from qosmon.model import ProbeBatch, Show
from qosmon.store.sqlite import SqliteStore
from tests.alertmanager_server import Receiver
from tests.collector_process import PROBES, sample
from tests.test_alert_alerter import config, webhook

TOKENS = {p: f"token-{p}-0123456789abcdef" for p in PROBES}
FEED = "feed-token-0123456789abcdef"


def _collector_config() -> CollectorConfig:
    return CollectorConfig.model_validate({
        "port": 0, "feed_tokens": [FEED],
        "probes": [{"probe_id": p, "token": t} for p, t in TOKENS.items()],
        "rate_limit": {"requests_per_s": 1000, "burst": 1000},
    })


async def test_show_without_end_call_ends_at_planned_end_plus_grace(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "q.db")
    pipeline = LivePipeline(store, report_dir=tmp_path / "reports",
                            settings=LiveSettings(end_grace_s=30))
    await pipeline.start()
    t0 = 1_700_000_000.0
    show = Show(show_id="s-noend", title="never ended", start_ts=t0, planned_end_ts=t0 + 60,
                regions=["ID", "TH"])
    store.put_show(show)
    pipeline.on_show(show)
    samples = [sample("s-noend", p, t0 + k, None) for k in range(60) for p in PROBES]
    store.write_probe_batch("b1", samples)
    pipeline.on_probe_samples(samples)
    try:
        await pipeline.tick(t0 + 89)  # planned end passed, grace not yet
        assert "s-noend" in pipeline.shows and store.get_show("s-noend").end_ts is None
        await pipeline.tick(t0 + 91)
        assert "s-noend" not in pipeline.shows  # finished shows leave memory
    finally:
        await pipeline.close()
    assert store.get_show("s-noend").end_ts == t0 + 90
    page = (tmp_path / "reports" / "s-noend.html").read_text()
    assert "never ended" in page
    # A late sample for it is neither diagnosed nor taken for an unknown show.
    pipeline.on_probe_samples([sample("s-noend", "id-1", t0 + 95, None)])
    assert pipeline.unknown_show_samples == 0
    store.close()


@pytest.mark.timeout(120)
async def test_samples_before_their_show_are_counted_then_diagnosed(tmp_path: Path) -> None:
    """Probes that start before their show exists: their batches are refused
    (404, nothing stored) and counted; the probes keep them and send them
    again, and once the show is created they are stored and diagnosed."""
    store = SqliteStore(tmp_path / "q.db")
    pipeline = LivePipeline(store, report_dir=None)
    await pipeline.start()
    collector = await start_collector(_collector_config(), store, pipeline)
    now = time.time()
    start = now - 28
    broken = start + 15  # ID's edge node fails 15 s in
    batches = {
        probe: ProbeBatch(
            batch_id=f"{probe}-early", probe_id=probe, sent_ts=now,
            samples=[sample("early", probe, start + k,
                            broken if PROBES[probe][0] == "ID" and start + k >= broken else None)
                     for k in range(28)])
        for probe in PROBES
    }

    async def send(http: aiohttp.ClientSession, expect: int) -> None:
        for probe, batch in batches.items():
            async with http.post("/api/v1/samples", data=batch.model_dump_json(),
                                 headers={"Authorization": f"Bearer {TOKENS[probe]}",
                                          "Content-Type": "application/json"}) as r:
                assert r.status == expect, await r.text()

    try:
        async with aiohttp.ClientSession(base_url=collector.url) as http:
            await send(http, 404)
            async with http.get("/metrics") as r:
                metrics = await r.text()
            assert "qosmon_samples_unknown_show_total 112.0" in metrics
            assert store.probe_samples("early") == []
            show = Show(show_id="early", start_ts=start, regions=["ID", "TH"])
            async with http.put("/api/v1/shows/early", json=show.model_dump(mode="json"),
                                headers={"Authorization": f"Bearer {FEED}"}) as r:
                assert r.status == 200, await r.text()
            await send(http, 200)  # the probes' spools send them again
            found: list[dict[str, object]] = []
            for _ in range(50):
                async with http.get("/api/v1/shows/early/incidents") as r:
                    found = (await r.json())["incidents"]
                if found:
                    break
                await asyncio.sleep(0.2)
    finally:
        await collector.stop()
        await pipeline.close()
        store.close()
    assert [(i["cause"], i["scope"]["region"]) for i in found] == [("node_failure", "ID")]


@pytest.mark.timeout(60)
async def test_healthz_reports_the_tick_and_a_stuck_outbox(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "q.db")
    rx = Receiver()  # down
    alerter = Alerter(config(webhook(rx.url + "/hook")), outbox=store)
    pipeline = LivePipeline(store, alerter, report_dir=None,
                            settings=LiveSettings(outbox_stuck_s=2))
    await pipeline.start()
    collector = await start_collector(_collector_config(), store, pipeline)
    try:
        async with aiohttp.ClientSession(base_url=collector.url) as http:
            for _ in range(30):
                async with http.get("/healthz") as r:
                    body = await r.json()
                if body["live"]["tick_age_s"] is not None:
                    break
                await asyncio.sleep(0.2)
            assert r.status == 200 and body["status"] == "ok", body
            assert body["live"]["tick_age_s"] < 2 and body["live"]["outbox_depth"] == 0
            # A page that cannot get out: queued, and after a while unhealthy.
            t = time.time()
            from tests.test_alert_alerter import incident

            await alerter.update("show1", [incident(start=t - 10)], t)
            async with http.get("/healthz") as r:
                assert r.status == 200 and (await r.json())["live"]["outbox_depth"] == 1
            await asyncio.sleep(2.5)
            async with http.get("/healthz") as r:
                body = await r.json()
                assert r.status == 503, body
            assert body["status"] == "unhealthy"
            assert "waited" in body["problems"][0]
            await rx.start()  # the receiver is back: the page goes out, health returns
            await rx.wait_for(1, timeout_s=10)
            for _ in range(20):
                async with http.get("/healthz") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.1)
            assert r.status == 200
    finally:
        await collector.stop()
        await pipeline.close()
        await rx.stop()
        store.close()


async def test_restart_continues_or_closes_the_open_incidents_it_finds(tmp_path: Path) -> None:
    """The store says two incidents are open: one the stored samples still
    show (it keeps its id and start), one they no longer show (it is closed
    at the last stored data, not left open forever)."""
    from qosmon.model import Cause, Incident, Severity

    store = SqliteStore(tmp_path / "q.db")
    now = time.time()
    t0 = now - 60
    broken = t0 + 20
    show = Show(show_id="rs", start_ts=t0, regions=["ID", "TH"])
    store.put_show(show)
    samples = [sample("rs", p, t0 + k, broken if PROBES[p][0] == "ID" and t0 + k >= broken
                      else None) for k in range(58) for p in PROBES]
    store.write_probe_batch("b1", samples)
    live_id = Incident(incident_id="inc-stored-live", show_id="rs", start_ts=broken,
                       detected_ts=broken + 5, severity=Severity.CRITICAL,
                       cause=Cause.NODE_FAILURE, scope={"region": "ID", "edge_node": "jkt-1"})
    gone = Incident(incident_id="inc-stored-gone", show_id="rs", start_ts=t0 + 5,
                    severity=Severity.WARNING, cause=Cause.PACKET_LOSS, scope={"region": "TH"})
    store.put_incidents("rs", [live_id, gone])
    pipeline = LivePipeline(store, report_dir=None)
    try:
        await pipeline.start()
        assert pipeline.recovery.shows == 1
        assert pipeline.recovery.incidents_continued == 1
        assert pipeline.recovery.incidents_closed == 1
        by_id = {i.incident_id: i for i in store.incidents("rs")}
        assert set(by_id) == {"inc-stored-live", "inc-stored-gone"}
        assert by_id["inc-stored-live"].end_ts is None
        assert by_id["inc-stored-live"].start_ts == broken
        assert by_id["inc-stored-gone"].end_ts == max(s.ts for s in samples)
        # Held until its probes post again, then diagnosis goes on.
        await pipeline.tick(time.time())
        assert "rs" not in pipeline.resumed_after_s
        later = [sample("rs", p, time.time(), broken if PROBES[p][0] == "ID" else None)
                 for p in PROBES]
        store.write_probe_batch("b2", later)
        pipeline.on_probe_samples(later)
        await pipeline.tick(time.time() + 3)
        assert "rs" in pipeline.resumed_after_s
        assert [i.incident_id for i in pipeline.incidents("rs") if i.end_ts is None] == [
            "inc-stored-live"]
    finally:
        await pipeline.close()
        store.close()


@pytest.mark.timeout(90)
async def test_notifications_of_an_ended_show_are_sent_by_the_next_collector(
    tmp_path: Path,
) -> None:
    """Collector A ends a show while the receiver is down and stops; B,
    sharing A's store, takes the show's lease once it runs out and sends the
    firing, then the resolve."""
    from tests.test_alert_alerter import incident

    db = tmp_path / "q.db"
    rx = Receiver()  # down
    fast = LiveSettings(lease_ttl_s=2, lease_renew_s=0.5)
    store_a = SqliteStore(db)
    alerter_a = Alerter(config(webhook(rx.url + "/hook")), outbox=store_a)
    a = LivePipeline(store_a, alerter_a, report_dir=None, settings=fast, owner="a")
    await a.start()
    t = time.time()
    show = Show(show_id="drain", start_ts=t - 60, regions=["ID"])
    store_a.put_show(show)
    a.on_show(show)
    await a.tick(t)
    assert store_a.lease_holders() == {"drain": "a"}
    await alerter_a.update("drain", [incident(start=t - 30).model_copy(
        update={"show_id": "drain"})], t)
    store_a.put_show(show.model_copy(update={"end_ts": t + 1}))
    a.on_show(show.model_copy(update={"end_ts": t + 1}))
    await a.tick(t + 2)  # the show ends: its alert resolves, nothing got out
    assert alerter_a.pending_for("drain") == 2
    await alerter_a.close()  # A stops without delivering (its lease stays, unrenewed)

    store_b = SqliteStore(db)
    alerter_b = Alerter(config(webhook(rx.url + "/hook")), outbox=store_b)
    b = LivePipeline(store_b, alerter_b, report_dir=None, settings=fast, owner="b")
    await rx.start()
    try:
        await b.start()  # A's lease is still valid: not B's to send yet
        assert alerter_b.pending_for("drain") == 0
        for _ in range(40):
            await b.tick(time.time())
            if len(rx.requests) >= 2:
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(0.5)
    finally:
        await b.close()
        await rx.stop()
        store_a.close()
        store_b.close()
    assert [r.json()["status"] for r in rx.requests] == ["firing", "resolved"]


async def test_a_holder_that_lost_its_lease_lets_the_show_go(tmp_path: Path) -> None:
    """A collector that stalled past its lease finds the show taken by
    another and stops diagnosing it (it is not unknown to it either)."""
    store = SqliteStore(tmp_path / "q.db")
    a = LivePipeline(store, report_dir=None, owner="a",
                     settings=LiveSettings(lease_ttl_s=1, lease_renew_s=0.2))
    await a.start()
    t = time.time()
    show = Show(show_id="held", start_ts=t - 10, regions=["ID"])
    store.put_show(show)
    a.on_show(show)
    try:
        await a.tick(t)
        assert store.lease_holders() == {"held": "a"} and "held" in a.shows
        await asyncio.sleep(1.2)  # a stalls: its lease runs out
        assert store.acquire_lease("held", "b", 30)  # another collector takes it
        await asyncio.sleep(0.3)
        await a.tick(time.time())
        assert "held" not in a.shows
        a.on_probe_samples([sample("held", "id-1", time.time(), None)])
        assert a.unknown_show_samples == 0
        a.on_show(show)  # a later update sent to a does not bring it back
        assert "held" not in a.shows
    finally:
        await a.close()
        store.close()


async def test_a_clean_stop_hands_its_shows_over_at_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "q.db")
    a = LivePipeline(store, report_dir=None, owner="a")  # default 15 s leases
    await a.start()
    show = Show(show_id="handover", start_ts=time.time() - 10, regions=["ID"])
    store.put_show(show)
    a.on_show(show)
    await a.tick(time.time())
    assert store.lease_holders() == {"handover": "a"}
    await a.close()
    b = LivePipeline(store, report_dir=None, owner="b")
    try:
        await b.start()  # no waiting for a's lease to run out
        assert "handover" in b.shows and store.lease_holders() == {"handover": "b"}
    finally:
        await b.close()
        store.close()
