"""A warehouse feed that heartbeats, through a running collector and its live
pipeline: silence turns the warehouse stale within the 10 s heartbeat age,
where a snapshot-only feed would have 60 s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from qosmon.collector.app import RunningCollector, start_collector
from qosmon.collector.config import CollectorConfig
from qosmon.live import LivePipeline
from qosmon.model import Show, Sku, StockLevel
from qosmon.store import open_store

FEED = "feed-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {FEED}"}


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[RunningCollector]:
    store = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    pipeline = LivePipeline(store)
    await pipeline.start()
    running = await start_collector(
        CollectorConfig.model_validate({"port": 0, "feed_tokens": [FEED]}), store, pipeline)
    try:
        yield running
    finally:
        await running.stop()
        await pipeline.close()
        store.close()


async def put_show(http: aiohttp.ClientSession) -> None:
    show = Show(show_id="hb-1", start_ts=time.time() - 60, regions=["US", "DE"],
                skus=[Sku(sku="A1")], region_warehouses={"US": ["WH-US"], "DE": ["WH-DE"]})
    async with http.put("/api/v1/shows/hb-1", json=show.model_dump(mode="json"),
                        headers=AUTH) as r:
        assert r.status == 200, await r.text()


async def post(http: aiohttp.ClientSession, path: str, body: object) -> tuple[int, dict]:
    async with http.post(path, json=body, headers=AUTH) as r:
        return r.status, await r.json()


async def states(http: aiohttp.ClientSession) -> dict[str, dict]:
    async with http.get("/api/v1/shows/hb-1/inventory") as r:
        assert r.status == 200
        return {s["warehouse"]: s for s in (await r.json())["states"]}


@pytest.mark.slow  # waits out the 10 s stale age in real time
@pytest.mark.timeout(60)
async def test_a_feed_that_stops_heartbeating_is_stale_within_10_s(
    collector: RunningCollector,
) -> None:
    async with aiohttp.ClientSession(base_url=collector.url) as http:
        await put_show(http)
        now = time.time()
        for wh in ("WH-US", "WH-DE"):
            status, _ = await post(http, "/api/v1/inventory/snapshot",
                                   {"warehouse": wh, "source_ts": now, "items": [
                                       {"sku": "A1", "on_hand": 500}]})
            assert status == 200
        # WH-US's feed heartbeats once a second (one of them as an empty,
        # marked change set), then stops; WH-DE never heartbeats.
        last_beat = 0.0
        for k in range(4):
            await asyncio.sleep(1.0)
            last_beat = time.time()
            if k == 2:
                status, body = await post(http, "/api/v1/inventory/changes", {
                    "records": [], "warehouse": "WH-US", "source_ts": last_beat})
                assert (status, body) == (200, {"stored": 0})
            else:
                status, body = await post(http, "/api/v1/inventory/heartbeat",
                                          {"warehouse": "WH-US", "source_ts": last_beat})
                assert status == 200 and body["ok"] is True
        fresh = await states(http)
        assert fresh["WH-US"]["level"] != StockLevel.STALE
        stopped_at = last_beat + 1.0  # the first heartbeat that does not come
        stale_ts = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st = await states(http)
            if st["WH-US"]["level"] == StockLevel.STALE:
                stale_ts = st["WH-US"]["ts"]  # the pipeline's clock at its judgement
                break
            await asyncio.sleep(0.25)
        assert stale_ts is not None, "never went stale"
        assert stale_ts - stopped_at <= 10.0
        assert st["WH-US"]["on_hand"] == 500 and "WMS sync" in st["WH-US"]["action"]
        assert 10.0 < st["WH-US"]["data_age_s"] <= 11.5
        # The snapshot-only warehouse is as silent but held to 60 s.
        assert st["WH-DE"]["level"] != StockLevel.STALE

        # One heartbeat and the figures stand again.
        status, _ = await post(http, "/api/v1/inventory/heartbeat",
                               {"warehouse": "WH-US", "source_ts": time.time()})
        assert status == 200
        deadline = time.monotonic() + 5
        while (await states(http))["WH-US"]["level"] == StockLevel.STALE:
            assert time.monotonic() < deadline, "still stale after a heartbeat"
            await asyncio.sleep(0.25)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/inventory/heartbeat", {"warehouse": "WH-US"}, "source_ts"),
        ("/api/v1/inventory/heartbeat", {"warehouse": "", "source_ts": 1.0}, "warehouse"),
        ("/api/v1/inventory/heartbeat",
         {"warehouse": "WH-US", "source_ts": 4e9}, "source_ts"),  # far in the future
        ("/api/v1/inventory/changes", {"records": [], "warehouse": "WH-US"}, None),
        ("/api/v1/inventory/changes",
         {"records": [{"source_ts": 1.0, "warehouse": "WH-DE", "sku": "A1", "on_hand": 1}],
          "warehouse": "WH-US", "source_ts": 2.0}, None),
    ],
)
async def test_bad_heartbeats_are_400_naming_the_problem(
    collector: RunningCollector, path: str, body: dict, field: str | None,
) -> None:
    async with aiohttp.ClientSession(base_url=collector.url) as http:
        status, answer = await post(http, path, body)
    assert status == 400, answer
    if field is not None:
        assert answer["field"] == field
    else:
        assert "warehouse" in answer["error"]


async def test_a_heartbeat_needs_a_feed_token(collector: RunningCollector) -> None:
    async with (aiohttp.ClientSession(base_url=collector.url) as http,
                http.post("/api/v1/inventory/heartbeat",
                          json={"warehouse": "WH-US", "source_ts": time.time()}) as r):
        assert r.status == 401
