"""Every endpoint of the collector over real HTTP on a loopback port, with a
real SQLite store behind it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qosmon.collector.app import start_collector
from qosmon.model import (
    Cause,
    Incident,
    Severity,
    Show,
    StockLevel,
    StockState,
)
from qosmon.store.sqlite import SqliteStore
from tests.test_collector_support import (
    FEED_TOKEN,
    PROBE_TOKENS,
    Ctx,
    RecordingPipeline,
    auth,
    batch,
    make_config,
    sample,
)

P1 = auth(PROBE_TOKENS["p1"])
FEED = auth(FEED_TOKEN)


def _store_with_show(path: Path) -> SqliteStore:
    """A store that knows the show the probe samples here are for: the
    collector refuses samples for a show it does not know."""
    store = SqliteStore(path)
    store.put_show(Show(show_id="show-1", start_ts=time.time() - 600))
    return store


async def _start(tmp_path: Path, **overrides: Any) -> Ctx:
    store = _store_with_show(tmp_path / "collector.db")
    pipeline = RecordingPipeline(store)
    running = await start_collector(make_config(**overrides), store, pipeline)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
    return Ctx(running, store, pipeline, http)


async def _stop(ctx: Ctx) -> None:
    await ctx.http.close()
    await ctx.running.stop()
    ctx.store.close()


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Ctx]:
    ctx = await _start(tmp_path)
    try:
        yield ctx
    finally:
        await _stop(ctx)


async def post(c: Ctx, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with c.http.post(c.url(path), json=body, headers=headers) as r:
        return r.status, await r.json()


async def get(c: Ctx, path: str, **params: Any) -> tuple[int, Any]:
    async with c.http.get(c.url(path), params=params) as r:
        return r.status, await r.json()


async def put_show(c: Ctx, show_id: str = "show-1", **kw: Any) -> dict[str, Any]:
    show = {"show_id": show_id, "title": "Spring sale", "start_ts": time.time() - 600,
            "regions": ["ID", "TH"], "skus": [{"sku": "SKU-1"}, {"sku": "SKU-2"}],
            "region_warehouses": {"ID": ["WH-ID"], "TH": ["WH-TH", "WH-ID"]}}
    show.update(kw)
    async with c.http.put(c.url(f"/api/v1/shows/{show_id}"), json=show, headers=FEED) as r:
        assert r.status == 200, await r.text()
        return await r.json()


# --- probe samples -----------------------------------------------------------------

async def test_batch_is_stored_with_receipt_time_and_handed_on(c: Ctx) -> None:
    before = time.time()
    status, body = await post(c, "/api/v1/samples",
                              batch("b-000001", [sample(ts=before - 2), sample(ts=before - 1)]),
                              P1)
    assert (status, body) == (200, {"stored": 2, "duplicate": False})
    stored = c.store.probe_samples("show-1")
    assert [s.ts for s in stored] == [before - 2, before - 1]
    assert all(s.received_ts is not None and s.received_ts >= before for s in stored)
    assert stored[0].rtt_ms == 42.0 and stored[0].isp == "Telkomsel"
    assert len(c.pipeline.samples) == 2
    assert c.pipeline.samples_durable == [True]


async def test_retried_batch_is_stored_once(c: Ctx) -> None:
    b = batch("retry-0001", [sample(ts=time.time() - 3), sample(ts=time.time() - 2)])
    first = await post(c, "/api/v1/samples", b, P1)
    second = await post(c, "/api/v1/samples", b, P1)
    assert first == (200, {"stored": 2, "duplicate": False})
    assert second == (200, {"stored": 0, "duplicate": True})
    assert len(c.store.probe_samples("show-1")) == 2
    assert len(c.pipeline.samples) == 2
    # Another probe may use the same batch id: ids are per probe.
    b2 = batch("retry-0001", [sample("p2")], probe_id="p2")
    assert await post(c, "/api/v1/samples", b2, auth(PROBE_TOKENS["p2"])) == (
        200, {"stored": 1, "duplicate": False})


async def test_concurrent_batches_all_stored(c: Ctx) -> None:
    now = time.time()
    batches = [batch(f"conc-{i:04d}", [sample(ts=now - 5 + j / 100) for j in range(50)])
               for i in range(40)]
    results = await asyncio.gather(*(post(c, "/api/v1/samples", b, P1) for b in batches))
    assert all(r == (200, {"stored": 50, "duplicate": False}) for r in results)
    assert c.store.count_probe_samples() == 2000


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer not-a-known-token-xxxx"}, 401),
        (auth(FEED_TOKEN), 403),
    ],
)
async def test_samples_need_a_probe_token(c: Ctx, headers: dict[str, str], status: int) -> None:
    got, body = await post(c, "/api/v1/samples", batch("auth-0001", [sample()]), headers)
    assert got == status
    assert body["field"] == "Authorization"
    assert c.store.count_probe_samples() == 0


async def test_probe_cannot_post_for_another_probe(c: Ctx) -> None:
    status, body = await post(c, "/api/v1/samples", batch("other-001", [], probe_id="p2"), P1)
    assert status == 403 and body["field"] == "probe_id"
    status, body = await post(c, "/api/v1/samples",
                              batch("other-002", [sample(), sample("p2")]), P1)
    assert status == 403 and body["field"] == "samples[1].probe_id"
    assert c.store.count_probe_samples() == 0


async def test_wrong_field_is_named(c: Ctx) -> None:
    samples = [sample() for _ in range(5)]
    samples[3]["rtt_ms"] = -1
    status, body = await post(c, "/api/v1/samples", batch("bad-00001", samples), P1)
    assert status == 400
    assert body["field"] == "samples[3].rtt_ms"
    assert "greater than or equal to 0" in body["error"]
    samples[3]["rtt_ms"] = 1
    samples[2]["rtt"] = 1
    status, body = await post(c, "/api/v1/samples", batch("bad-00002", samples), P1)
    assert (status, body["field"], body["problem"]) == (400, "samples[2].rtt", "unknown field")
    assert c.store.count_probe_samples() == 0


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"batch_id": "abcdefgh", ', "(body)"),
        (b"\xff\xfe not utf-8", "(body)"),
        (b'{"batch_id":"abcdefgh","probe_id":"p1","sent_ts":1e999,"samples":[]}', "sent_ts"),
        (b'{"batch_id":"abcdefgh","probe_id":"p1","sent_ts":1,"samples":[],'
         b'"dropped_samples":123456789012345678901234567890}', "dropped_samples"),
        (b'{"batch_id":"abcdefgh","probe_id":"p\\ud800","sent_ts":1,"samples":[]}', "(body)"),
        (b"[]", "(body)"),
        (b"null", "(body)"),
    ],
)
async def test_malformed_bodies_are_400(c: Ctx, raw: bytes, field: str) -> None:
    async with c.http.post(c.url("/api/v1/samples"), data=raw,
                           headers={**P1, "Content-Type": "application/json"}) as r:
        body = await r.json()
        assert r.status == 400, body
        assert body["field"] == field


async def test_huge_number_in_a_sample_is_400(c: Ctx) -> None:
    s = sample()
    raw = json.dumps(batch("huge-0001", [s])).replace('"packets_expected": 100',
                                                      '"packets_expected": 1' + "0" * 30)
    async with c.http.post(c.url("/api/v1/samples"), data=raw,
                           headers={**P1, "Content-Type": "application/json"}) as r:
        body = await r.json()
        assert (r.status, body["field"]) == (400, "samples[0].packets_expected")


async def test_huge_number_in_a_later_sample_is_400(c: Ctx) -> None:
    samples = [sample(ts=time.time() - 5 + i) for i in range(5)]
    samples[3]["chat_sent"] = 2**64
    status, body = await post(c, "/api/v1/samples", batch("huge-0002", samples), P1)
    assert (status, body["field"]) == (400, "samples[3].chat_sent")
    assert "64-bit" in body["problem"]
    samples[3]["chat_sent"] = 2**63 - 1  # the largest a column holds: fine
    status, body = await post(c, "/api/v1/samples", batch("huge-0003", samples), P1)
    assert status == 200, body
    assert c.store.count_probe_samples() == 5


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_non_finite_number_in_a_sample_is_400(c: Ctx, raw: str) -> None:
    samples = [sample(ts=time.time() - 2), sample(ts=time.time() - 1)]
    body = json.dumps(batch("nan-00001", samples))
    head, _, tail = body.rpartition('"rtt_ms": 42.0')
    async with c.http.post(c.url("/api/v1/samples"), data=head + f'"rtt_ms": {raw}' + tail,
                           headers={**P1, "Content-Type": "application/json"}) as r:
        got = await r.json()
        assert (r.status, got["field"]) == (400, "samples[1].rtt_ms"), got
    assert c.store.count_probe_samples() == 0


class _BlockingOnlyStore:
    """The SQLite store without ``submit_probe_batch``, like a backend that
    only offers the blocking interface; records which thread wrote."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.writer_threads: list[str] = []

    def write_probe_batch(self, batch_id: str, samples: Any) -> bool:
        self.writer_threads.append(threading.current_thread().name)
        return self.inner.write_probe_batch(batch_id, samples)

    def __getattr__(self, name: str) -> Any:
        if name == "submit_probe_batch":
            raise AttributeError(name)
        return getattr(self.inner, name)


async def test_a_store_with_only_blocking_writes_is_called_from_worker_threads(
    tmp_path: Path,
) -> None:
    store = _store_with_show(tmp_path / "blocking.db")
    wrapped = _BlockingOnlyStore(store)
    running = await start_collector(make_config(), wrapped, RecordingPipeline(store))
    try:
        async with aiohttp.ClientSession() as http:
            b = batch("block-0001", [sample(ts=time.time() - 1)])
            for expected in ({"stored": 1, "duplicate": False}, {"stored": 0, "duplicate": True}):
                async with http.post(f"{running.url}/api/v1/samples", json=b, headers=P1) as r:
                    assert (r.status, await r.json()) == (200, expected)
    finally:
        await running.stop()
        store.close()
    assert len(wrapped.writer_threads) == 2
    assert all(name.startswith("store") for name in wrapped.writer_threads)


async def test_wrong_content_type_is_415(c: Ctx) -> None:
    async with c.http.post(c.url("/api/v1/samples"), data=b"x=1",
                           headers={**P1, "Content-Type": "application/x-www-form-urlencoded"}
                           ) as r:
        assert r.status == 415
        assert (await r.json())["field"] == "Content-Type"


async def test_samples_far_in_the_future_are_rejected(c: Ctx) -> None:
    status, body = await post(c, "/api/v1/samples",
                              batch("future-01", [sample(), sample(ts=time.time() + 3600)]), P1)
    assert status == 400 and body["field"] == "samples[1].ts"
    assert "ahead of the collector's clock" in body["error"]
    # Within the allowed skew is fine: probe clocks drift a little.
    status, _ = await post(c, "/api/v1/samples",
                           batch("future-02", [sample(ts=time.time() + 5)]), P1)
    assert status == 200


async def test_oversized_body_is_413(tmp_path: Path) -> None:
    ctx = await _start(tmp_path, max_body_bytes=4096)
    try:
        big = batch("big-00001", [sample() for _ in range(100)])
        status, body = await post(ctx, "/api/v1/samples", big, P1)
        assert status == 413 and "error" in body
        # Without a Content-Length (chunked), the limit still holds.
        async def chunks() -> AsyncIterator[bytes]:
            yield json.dumps(big).encode()
        async with ctx.http.post(ctx.url("/api/v1/samples"), data=chunks(),
                                 headers={**P1, "Content-Type": "application/json"}) as r:
            assert r.status == 413
        assert ctx.store.count_probe_samples() == 0
    finally:
        await _stop(ctx)


async def test_too_fast_is_429_per_token(tmp_path: Path) -> None:
    ctx = await _start(tmp_path, rate_limit={"requests_per_s": 0.5, "burst": 3})
    try:
        codes = []
        for i in range(5):
            status, _ = await post(ctx, "/api/v1/samples", batch(f"rate-{i:04d}", []), P1)
            codes.append(status)
        assert codes == [200, 200, 200, 429, 429]
        async with ctx.http.post(ctx.url("/api/v1/samples"), json=batch("rate-9999", []),
                                 headers=P1) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        # Another probe's token has its own bucket.
        status, _ = await post(ctx, "/api/v1/samples", batch("rate-p2-01", [], probe_id="p2"),
                               auth(PROBE_TOKENS["p2"]))
        assert status == 200
    finally:
        await _stop(ctx)


async def test_store_failure_is_503_not_acknowledged(c: Ctx) -> None:
    c.store.close()
    status, body = await post(c, "/api/v1/samples", batch("closed-01", [sample()]), P1)
    assert status == 503 and "retry" in body["error"]
    assert c.pipeline.samples == []


# --- heartbeats and fleet ----------------------------------------------------------------

async def test_heartbeat_and_fleet_view(c: Ctx) -> None:
    hb = {"probe": {"probe_id": "p1", "region": "ID", "isp": "Telkomsel", "edge_node": "jkt-1"},
          "ts": time.time() - 5.0, "version": "0.3.1", "streams": ["main"]}
    status, _ = await post(c, "/api/v1/probes/heartbeat", hb, P1)
    assert status == 200
    status, fleet = await get(c, "/api/v1/fleet")
    assert status == 200
    probes = {p["probe_id"]: p for p in fleet["probes"]}
    p1, p2 = probes["p1"], probes["p2"]
    assert p1["up"] is True and p1["version"] == "0.3.1"
    assert p1["labels"]["region"] == "ID" and p1["labels"]["edge_node"] == "jkt-1"
    # The probe's clock is 5 s behind: offset = received - probe ts = +5 s.
    assert 4900 <= p1["clock_offset_ms"] <= 5500
    assert p2["up"] is False and p2["last_seen"] is None


async def test_heartbeat_for_another_probe_is_403(c: Ctx) -> None:
    hb = {"probe": {"probe_id": "p2", "region": "ID"}, "ts": time.time()}
    status, body = await post(c, "/api/v1/probes/heartbeat", hb, P1)
    assert status == 403 and body["field"] == "probe.probe_id"


async def test_probe_is_down_after_three_missed_heartbeats(tmp_path: Path) -> None:
    ctx = await _start(tmp_path, heartbeat_interval_s=0.1)
    try:
        hb = {"probe": {"probe_id": "p1", "region": "ID"}, "ts": time.time()}
        await post(ctx, "/api/v1/probes/heartbeat", hb, P1)
        _, fleet = await get(ctx, "/api/v1/fleet")
        assert next(p for p in fleet["probes"] if p["probe_id"] == "p1")["up"] is True
        await asyncio.sleep(0.4)
        _, fleet = await get(ctx, "/api/v1/fleet")
        assert next(p for p in fleet["probes"] if p["probe_id"] == "p1")["up"] is False
    finally:
        await _stop(ctx)


# --- shows -------------------------------------------------------------------------

async def test_show_lifecycle(c: Ctx) -> None:
    created = await put_show(c)
    assert created["region_warehouses"]["TH"] == ["WH-TH", "WH-ID"]
    status, one = await get(c, "/api/v1/shows/show-1")
    assert status == 200 and one["title"] == "Spring sale" and one["end_ts"] is None
    await put_show(c, "show-2", title="Night show")
    status, all_shows = await get(c, "/api/v1/shows")
    assert [s["show_id"] for s in all_shows["shows"]] == ["show-1", "show-2"]
    end_ts = time.time()
    status, ended = await post(c, "/api/v1/shows/show-1/end", {"ts": end_ts}, FEED)
    assert status == 200 and ended["end_ts"] == end_ts
    assert c.store.get_show("show-1").end_ts == end_ts  # type: ignore[union-attr]
    assert [s.end_ts for s in c.pipeline.shows if s.show_id == "show-1"] == [None, end_ts]


async def test_show_errors(c: Ctx) -> None:
    assert (await get(c, "/api/v1/shows/nope"))[0] == 404
    status, body = await post(c, "/api/v1/shows/nope/end", {"ts": time.time()}, FEED)
    assert status == 404
    await put_show(c)
    status, body = await post(c, "/api/v1/shows/show-1/end", {"ts": 1.0}, FEED)
    assert status == 400 and body["field"] == "ts"
    async with c.http.put(c.url("/api/v1/shows/other"),
                          json={"show_id": "show-1", "start_ts": time.time()},
                          headers=FEED) as r:
        assert r.status == 400 and (await r.json())["field"] == "show_id"
    async with c.http.put(c.url("/api/v1/shows/show-1"),
                          json={"show_id": "show-1", "start_ts": time.time()}, headers=P1) as r:
        assert r.status == 403
    async with c.http.put(c.url("/api/v1/shows/show-1"),
                          json={"show_id": "show-1", "start_ts": "soon"}, headers=FEED) as r:
        assert r.status == 400 and (await r.json())["field"] == "start_ts"


async def test_on_screen_events(c: Ctx) -> None:
    await put_show(c)
    now = time.time()
    events = [{"ts": now - 60, "show_id": "show-1", "sku": "SKU-1", "on": True},
              {"ts": now - 30, "show_id": "show-1", "sku": "SKU-1", "on": False}]
    status, body = await post(c, "/api/v1/shows/show-1/on-screen", events, FEED)
    assert (status, body) == (200, {"stored": 2})
    assert [(e.sku, e.on) for e in c.store.on_screen("show-1")] == [("SKU-1", True),
                                                                   ("SKU-1", False)]
    assert len(c.pipeline.on_screen_events) == 2
    events[1]["show_id"] = "show-2"
    status, body = await post(c, "/api/v1/shows/show-1/on-screen", events, FEED)
    assert status == 400 and body["field"] == "[1].show_id"
    status, _ = await post(c, "/api/v1/shows/unknown/on-screen", [], FEED)
    assert status == 404


# --- business ------------------------------------------------------------------------

async def test_business_push(c: Ctx) -> None:
    now = time.time()
    samples = [{"ts": now - 2, "show_id": "show-1", "region": "ID", "viewers_online": 1200,
                "joins": 30, "leaves": 12, "orders": 4},
               {"ts": now - 1, "show_id": "show-1", "viewers_online": 3000}]
    status, body = await post(c, "/api/v1/business", {"samples": samples}, FEED)
    assert (status, body) == (200, {"stored": 2})
    stored = c.store.business("show-1")
    assert [(s.region, s.viewers_online, s.orders) for s in stored] == [
        ("ID", 1200, 4), ("", 3000, None)]
    assert len(c.pipeline.business) == 2
    # A retried push replaces the same interval instead of double counting.
    await post(c, "/api/v1/business", {"samples": samples}, FEED)
    assert len(c.store.business("show-1")) == 2
    samples[1]["orders"] = -3
    status, body = await post(c, "/api/v1/business", {"samples": samples}, FEED)
    assert status == 400 and body["field"] == "samples[1].orders"
    status, body = await post(c, "/api/v1/business", {"samples": samples}, P1)
    assert status == 403


async def _import(c: Ctx, text: str | bytes, show_id: str | None = "show-1") -> tuple[int, Any]:
    params = {"show_id": show_id} if show_id else {}
    data = text.encode() if isinstance(text, str) else text
    async with c.http.post(c.url("/api/v1/business/import"), data=data, params=params,
                           headers={**FEED, "Content-Type": "text/csv"}) as r:
        return r.status, await r.json()


async def test_business_csv_import(c: Ctx) -> None:
    csv_text = ("ts,region,viewers_online,orders,sku\n"
                "1700000000,ID,1000,3,SKU-1\n"
                "2023-11-14T22:13:21+00:00,TH,500,,\n"
                "\n")
    status, body = await _import(c, csv_text)
    assert (status, body) == (200, {"stored": 2})
    stored = c.store.business("show-1")
    assert [(s.ts, s.region, s.viewers_online, s.orders, s.sku) for s in stored] == [
        (1700000000.0, "ID", 1000, 3, "SKU-1"), (1700000001.0, "TH", 500, None, "")]


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("ts,region,orders\n1700000000,ID,3\n1700000001,ID,many\n", 3, "orders"),
        ("ts,region,colour\n1700000000,ID,red\n", 1, "colour"),
        ("ts,orders\nyesterday,3\n", 2, "ts"),
        ("ts,orders\n2023-11-14T22:13:21,3\n", 2, "ts"),
        ("ts,orders\n1700000000,-1\n", 2, "orders"),
        ("ts,show_id\n1700000000,other-show\n", 2, "show_id"),
        ("ts,orders\n1700000000,99999999999999999999999\n", 2, "orders"),
    ],
)
async def test_business_csv_errors_name_line_and_column(
    c: Ctx, text: str, line: int, column: str
) -> None:
    status, body = await _import(c, text)
    assert status == 400, body
    assert (body["line"], body["column"]) == (line, column)
    assert f"line {line}, column {column}" in body["error"]
    assert c.store.business("show-1") == []


async def test_business_csv_other_rejections(c: Ctx) -> None:
    assert (await _import(c, b"ts,orders\n\xff\xff,1\n"))[0] == 400
    assert (await _import(c, "ts,orders\n1700000000,1\n", show_id=None))[1]["field"] == "show_id"
    assert (await _import(c, ""))[0] == 400
    status, body = await _import(c, "ts,orders\n1700000000,1,2\n")
    assert status == 400 and body["line"] == 2
    async with c.http.post(c.url("/api/v1/business/import"), data=b"ts\n1\n",
                           params={"show_id": "show-1"},
                           headers={**FEED, "Content-Type": "application/json"}) as r:
        assert r.status == 415


# --- inventory ------------------------------------------------------------------------

async def test_inventory_snapshot_and_changes(c: Ctx) -> None:
    src = time.time() - 120
    before = time.time()
    snap = {"warehouse": "WH-ID", "source_ts": src,
            "items": [{"sku": "SKU-1", "on_hand": 40}, {"sku": "SKU-2", "on_hand": 0}]}
    status, body = await post(c, "/api/v1/inventory/snapshot", snap, FEED)
    assert (status, body) == (200, {"stored": 2})
    records = c.store.stock()
    assert [(r.warehouse, r.sku, r.on_hand, r.full_snapshot) for r in records] == [
        ("WH-ID", "SKU-1", 40, True), ("WH-ID", "SKU-2", 0, True)]
    assert all(r.source_ts == src and r.ts >= before for r in records)
    # Changes: the sender need not set ts; the collector stamps receipt.
    changes = {"records": [{"source_ts": src + 60, "warehouse": "WH-ID", "sku": "SKU-1",
                            "on_hand": 35}]}
    status, body = await post(c, "/api/v1/inventory/changes", changes, FEED)
    assert (status, body) == (200, {"stored": 1})
    latest = [r for r in c.store.stock() if r.sku == "SKU-1"][-1]
    assert (latest.on_hand, latest.full_snapshot, latest.source_ts) == (35, False, src + 60)
    assert len(c.pipeline.stock) == 3


async def test_inventory_rejections(c: Ctx) -> None:
    snap = {"warehouse": "WH-ID", "source_ts": time.time(),
            "items": [{"sku": "SKU-1", "on_hand": 1}, {"sku": "SKU-1", "on_hand": 2}]}
    status, body = await post(c, "/api/v1/inventory/snapshot", snap, FEED)
    assert status == 400 and body["field"] == "items[1].sku"
    snap["items"] = [{"sku": "SKU-1", "on_hand": -1}]
    status, body = await post(c, "/api/v1/inventory/snapshot", snap, FEED)
    assert status == 400 and body["field"] == "items[0].on_hand"
    snap["items"] = [{"sku": "SKU-1", "on_hand": 1}]
    snap["source_ts"] = time.time() + 86400
    status, body = await post(c, "/api/v1/inventory/snapshot", snap, FEED)
    assert status == 400 and body["field"] == "source_ts"
    changes = {"records": [{"source_ts": time.time(), "warehouse": "WH-ID", "sku": "S",
                            "on_hand": 1, "colour": "red"}]}
    status, body = await post(c, "/api/v1/inventory/changes", changes, FEED)
    assert status == 400 and body["field"] == "records[0].colour"
    async with c.http.post(c.url("/api/v1/inventory/changes"), data=b"{not json",
                           headers={**FEED, "Content-Type": "application/json"}) as r:
        assert r.status == 400
    assert c.store.stock() == []


# --- reads: incidents, inventory, series ---------------------------------------------------

async def test_incidents_come_from_the_store(c: Ctx) -> None:
    await put_show(c)
    inc = Incident(incident_id="i-1", show_id="show-1", start_ts=time.time() - 100,
                   severity=Severity.CRITICAL, cause=Cause.PACKET_LOSS,
                   scope={"region": "ID"}, summary="loss in ID")
    c.store.put_incidents("show-1", [inc])
    status, body = await get(c, "/api/v1/shows/show-1/incidents")
    assert status == 200
    assert [(i["incident_id"], i["cause"], i["scope"]) for i in body["incidents"]] == [
        ("i-1", "packet_loss", {"region": "ID"})]
    assert (await get(c, "/api/v1/shows/nope/incidents"))[0] == 404


def _state(sku: str, level: StockLevel, on_hand: int) -> StockState:
    return StockState(ts=time.time(), show_id="show-1", sku=sku, warehouse="WH-ID",
                      level=level, on_hand=on_hand)


async def test_inventory_view_and_live_events(c: Ctx) -> None:
    await put_show(c)
    c.pipeline.current["show-1"] = [_state("SKU-1", StockLevel.GREEN, 40)]
    status, body = await get(c, "/api/v1/shows/show-1/inventory")
    assert status == 200 and body["states"][0]["level"] == "green"
    async with c.http.get(c.url("/api/v1/shows/show-1/inventory/events")) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        first = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)
        assert json.loads(first.decode()[len("data: "):])["on_hand"] == 40
        c.pipeline.stock_feed.publish([_state("SKU-1", StockLevel.RED, 2)])
        second = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)
        assert json.loads(second.decode()[len("data: "):])["level"] == "red"


async def test_series_last_minutes(c: Ctx) -> None:
    now = time.time()
    samples = [sample(ts=now - 600, rtt_ms=10.0), sample(ts=now - 100, rtt_ms=20.0),
               sample(ts=now - 50, rtt_ms=30.0, region="TH")]
    await post(c, "/api/v1/samples", batch("series-01", samples), P1)
    status, body = await get(c, "/api/v1/series", show_id="show-1", metric="rtt_ms", minutes=5)
    assert status == 200
    assert [p["value"] for p in body["points"]] == [20.0, 30.0]
    _, body = await get(c, "/api/v1/series", show_id="show-1", metric="rtt_ms", minutes=5,
                        region="TH")
    assert [p["value"] for p in body["points"]] == [30.0]
    _, body = await get(c, "/api/v1/series", show_id="show-1", metric="rtt_ms", minutes=60,
                        probe_id="p1")
    assert len(body["points"]) == 3
    status, body = await get(c, "/api/v1/series", show_id="show-1", metric="colour")
    assert status == 400 and body["field"] == "metric"
    status, body = await get(c, "/api/v1/series", show_id="show-1", metric="rtt_ms",
                             minutes="nan")
    assert status == 400 and body["field"] == "minutes"
    status, body = await get(c, "/api/v1/series", metric="rtt_ms")
    assert status == 400 and body["field"] == "show_id"


# --- metrics, health, openapi, lifecycle ---------------------------------------------------

async def test_metrics_health_openapi(c: Ctx) -> None:
    await post(c, "/api/v1/samples", batch("metrics-1", [sample(), sample()]), P1)
    await post(c, "/api/v1/samples", batch("metrics-2", [sample(rtt_ms=-1)]), P1)
    await post(c, "/api/v1/samples", batch("metrics-3", []), {})
    hb = {"probe": {"probe_id": "p1", "region": "ID"}, "ts": time.time()}
    await post(c, "/api/v1/probes/heartbeat", hb, P1)
    async with c.http.get(c.url("/metrics")) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    assert "qosmon_collector_samples_ingested_total 2.0" in text
    assert 'qosmon_collector_requests_rejected_total{reason="invalid"} 1.0' in text
    assert 'qosmon_collector_requests_rejected_total{reason="unauthenticated"} 1.0' in text
    assert 'qosmon_collector_store_seconds_count{op="write_probe_batch"} 1.0' in text
    assert "qosmon_collector_probes_up 1.0" in text
    status, health = await get(c, "/healthz")
    assert status == 200 and health["status"] == "ok"
    assert health["store"]["ok"] and health["store"]["writer_alive"]
    status, doc = await get(c, "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert "/api/v1/samples" in doc["paths"] and "ProbeBatch" in doc["components"]["schemas"]


async def test_unknown_route_and_method_are_json(c: Ctx) -> None:
    status, body = await get(c, "/api/v1/nothing")
    assert status == 404 and "error" in body
    async with c.http.delete(c.url("/api/v1/samples")) as r:
        assert r.status == 405 and "error" in await r.json()


async def test_pipeline_ticks_about_once_a_second(c: Ctx) -> None:
    await asyncio.sleep(2.3)
    assert 1 <= len(c.pipeline.ticks) <= 4
    assert c.pipeline.overlapping_ticks == 0


async def test_read_tokens_guard_reads(tmp_path: Path) -> None:
    read_token = "read-token-0123456789abc"
    ctx = await _start(tmp_path, read_tokens=[read_token])
    try:
        assert (await get(ctx, "/api/v1/shows"))[0] == 401
        async with ctx.http.get(ctx.url("/api/v1/shows"), headers=auth(read_token)) as r:
            assert r.status == 200
        assert (await get(ctx, "/healthz"))[0] == 200
    finally:
        await _stop(ctx)


async def test_samples_for_a_show_not_created_yet_are_refused_counted_then_taken(c: Ctx) -> None:
    """A probe that starts before the show is created: its batches get 404
    (nothing stored), are counted in /metrics, and the same batch sent again
    once the show exists is stored."""
    b = batch("early-0001", [sample(ts=time.time() - 2, show_id="later-show")])
    status, body = await post(c, "/api/v1/samples", b, P1)
    assert status == 404 and "no show 'later-show'" in body["error"]
    assert c.store.probe_samples("later-show") == []
    async with c.http.get(c.url("/metrics")) as r:
        text = await r.text()
    assert "qosmon_samples_unknown_show_total 1.0" in text
    await put_show(c, "later-show")
    assert await post(c, "/api/v1/samples", b, P1) == (200, {"stored": 1, "duplicate": False})
    assert len(c.store.probe_samples("later-show")) == 1
