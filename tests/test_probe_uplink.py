"""The probe's uplink against a small collector written here (our seam: the
real collector speaks the same HTTP API), started and stopped for real on
loopback: batches, auth, refusals, outages, the bounded disk spool."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from probes.uplink import CollectorUplink
from qosmon.model import ConnectionState, Heartbeat, ProbeBatch, ProbeLabels, ProbeSample

TOKEN = "tok-123"
LABELS = ProbeLabels(probe_id="p1", region="SG")


class FakeCollector:
    def __init__(self) -> None:
        self.batches: dict[str, ProbeBatch] = {}
        self.posts = 0
        self.duplicates = 0
        self.heartbeats: list[Heartbeat] = []
        self.answer: int | None = None  # force a status
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def samples(self, request: web.Request) -> web.Response:
        self.posts += 1
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "bad token"}, status=401)
        if self.answer is not None:
            return web.json_response({"error": "forced"}, status=self.answer)
        batch = ProbeBatch.model_validate_json(await request.read())
        dup = batch.batch_id in self.batches
        self.duplicates += dup
        self.batches[batch.batch_id] = batch
        return web.json_response({"stored": 0 if dup else len(batch.samples), "duplicate": dup})

    async def heartbeat(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "bad token"}, status=401)
        self.heartbeats.append(Heartbeat.model_validate_json(await request.read()))
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/samples", self.samples)
        app.router.add_post("/api/v1/probes/heartbeat", self.heartbeat)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stored(self) -> list[ProbeSample]:
        return [s for b in self.batches.values() for s in b.samples]


@pytest.fixture
async def collector() -> AsyncIterator[FakeCollector]:
    c = FakeCollector()
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


def sample(i: int) -> ProbeSample:
    return ProbeSample(ts=1_700_000_000 + i, show_id="show", stream_id="s", probe_id="p1",
                       region="SG", state=ConnectionState.CONNECTED, packets_expected=i)


def uplink(url: str, tmp: Path | None, **kw: object) -> CollectorUplink:
    opts: dict[str, object] = {"batch_interval_s": 0.05, "heartbeat_interval_s": 0.2,
                               "retry_max_s": 0.2, "streams": ["show/s"]}
    opts.update(kw)
    return CollectorUplink(url, TOKEN, LABELS, spool_dir=tmp, **opts)  # type: ignore[arg-type]


async def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_batches_and_heartbeats(collector: FakeCollector, tmp_path: Path) -> None:
    up = uplink(collector.url, tmp_path)
    for i in range(30):
        await up.put(sample(i))
        await asyncio.sleep(0.005)
    await wait_for(lambda: len(collector.stored()) == 30 and collector.heartbeats)
    await up.aclose()
    assert sorted(s.packets_expected for s in collector.stored()) == list(range(30))
    hb = collector.heartbeats[0]
    assert hb.probe == LABELS and hb.streams == ["show/s"]
    assert not list(tmp_path.glob("*.batch.json"))  # spool empty once sent
    assert "tok-123" not in repr(up)


async def test_outage_loses_nothing_and_retries_keep_batch_id(
    collector: FakeCollector, tmp_path: Path
) -> None:
    up = uplink(collector.url, tmp_path)
    n = 0

    async def produce(seconds: float) -> None:
        nonlocal n
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await up.put(sample(n))
            n += 1
            await asyncio.sleep(0.01)

    await produce(0.3)
    await collector.stop()  # the collector goes away mid-run
    await produce(1.0)
    assert up.spool.samples > 0 and list(tmp_path.glob("*.batch.json"))
    await collector.start()  # same port
    await produce(0.3)
    await wait_for(lambda: len(collector.stored()) == n, timeout=10)
    await up.aclose()
    assert sorted(s.packets_expected for s in collector.stored()) == list(range(n))
    assert all(b.dropped_samples == 0 for b in collector.batches.values())


async def test_timeout_then_retry_same_batch_id_is_duplicate(
    collector: FakeCollector, tmp_path: Path
) -> None:
    # The collector stored the batch but the answer was lost (here: a 503
    # after storing): the retry carries the same id so it can be dropped.
    up = uplink(collector.url, tmp_path)
    orig = collector.samples
    calls = 0

    async def store_then_fail(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        resp = await orig(request)
        return resp if calls > 1 else web.json_response({}, status=503)

    collector.samples = store_then_fail  # type: ignore[method-assign]
    await collector.stop()
    await collector.start()
    await up.put(sample(1))
    await wait_for(lambda: calls >= 2)
    await up.aclose()
    assert collector.duplicates == 1 and len(collector.batches) == 1


@pytest.mark.parametrize("status", [400, 403, 409])
async def test_batch_refused_for_good_is_set_aside_not_retried_forever(
    collector: FakeCollector, tmp_path: Path, status: int
) -> None:
    # Finding: a spooled batch answered 403 was retried forever at the head
    # of the queue, so nothing behind it was ever sent.
    collector.answer = status
    up = uplink(collector.url, tmp_path)
    await up.put(sample(1))
    await wait_for(lambda: up.rejected_samples == 1)
    posts = collector.posts
    await asyncio.sleep(0.3)
    assert collector.posts == posts  # not retried
    assert len(list((tmp_path / "refused").glob("*.batch.json"))) == 1
    collector.answer = None
    await up.put(sample(2))  # the queue moved on
    await wait_for(lambda: len(collector.stored()) == 1)
    await up.aclose()


async def test_refused_token_keeps_spooling(collector: FakeCollector, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    up = CollectorUplink(collector.url, "wrong-token-xyz", LABELS, spool_dir=tmp_path,
                         batch_interval_s=0.05, retry_max_s=0.1)
    for i in range(5):
        await up.put(sample(i))
    await wait_for(lambda: up.auth_failures >= 2)
    assert up.spool.samples == 5 and not collector.batches
    assert any("refused our token" in r.getMessage() for r in caplog.records)
    assert "wrong-token-xyz" not in caplog.text
    await up.aclose(drain_timeout_s=0.2)
    # The samples wait on disk for a probe with the right token.
    up2 = uplink(collector.url, tmp_path)
    await up2.start()
    await wait_for(lambda: len(collector.stored()) == 5)
    await up2.aclose()


async def test_full_spool_drops_oldest_and_counts(collector: FakeCollector,
                                                  tmp_path: Path) -> None:
    await collector.stop()
    up = uplink(collector.url, tmp_path, spool_max_samples=20)
    for i in range(50):
        await up.put(sample(i))
        if i % 5 == 4:
            await asyncio.sleep(0.08)  # one batch per 5 samples
    await asyncio.sleep(0.1)
    await collector.start()
    await wait_for(lambda: not len(up.spool), timeout=10)
    await up.aclose()
    got = sorted(s.packets_expected for s in collector.stored())
    dropped = sum(b.dropped_samples for b in collector.batches.values())
    assert len(got) + dropped == 50
    assert len(got) <= 25 and got[-1] == 49  # the newest kept, the oldest gone
    assert got == list(range(50 - len(got), 50))


async def test_spool_disk_failing_is_reported_in_heartbeats_and_nothing_lost(
    collector: FakeCollector, tmp_path: Path
) -> None:
    # Finding: on a full disk the uploader task died silently while
    # heartbeats kept the probe "up" and samples piled up in memory.
    spool_dir = tmp_path / "spool"
    up = uplink(collector.url, spool_dir, heartbeat_interval_s=0.1)
    shutil.rmtree(spool_dir)  # every spool write now fails
    for i in range(20):
        await up.put(sample(i))
    await wait_for(lambda: len(collector.stored()) == 20)
    await wait_for(lambda: any(h.spool_error for h in collector.heartbeats))
    assert "spool write failed" in collector.heartbeats[-1].spool_error
    assert up.task_failures == 0
    spool_dir.mkdir()
    await up.put(sample(21))
    await wait_for(lambda: len(collector.stored()) == 21)
    n = len(collector.heartbeats)
    await wait_for(lambda: len(collector.heartbeats) > n + 1)
    assert collector.heartbeats[-1].spool_error == ""
    await up.aclose()


async def test_a_failing_uplink_task_is_restarted_and_reported(
    collector: FakeCollector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug in spooling (here: the first add raises) must not leave the
    # batcher dead while heartbeats keep the probe looking healthy.
    monkeypatch.setattr("probes.uplink.RESTART_DELAY_S", 0.05)
    up = uplink(collector.url, tmp_path, heartbeat_interval_s=0.1)
    real_add = up.spool.add
    calls = {"n": 0}

    def add_failing_once(samples: list[ProbeSample], now: float | None = None) -> ProbeBatch:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("spool bug")
        return real_add(samples, now)

    monkeypatch.setattr(up.spool, "add", add_failing_once)
    await up.put(sample(1))
    await wait_for(lambda: up.task_failures == 1)
    await wait_for(lambda: any("batcher failed: RuntimeError: spool bug" in h.spool_error
                               for h in collector.heartbeats))
    await up.put(sample(2))
    # Nothing lost: the sample whose spooling failed is spooled on the retry.
    await wait_for(lambda: len(collector.stored()) == 2)
    await up.aclose()
