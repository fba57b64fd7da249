"""The platform's own player reports: accepted by the collector over real HTTP
into a real SQLite store and handed on, and localized by the engine (failure
rate and rebuffer ratio by region x ISP x CDN x device x app version) as
evidence of the stream incident they explain."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from qosmon.collector.app import start_collector
from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.model import Cause, Metric, ViewerAggregate
from qosmon.store.sqlite import SqliteStore
from tests.synthetic_shows import Scenario, generate
from tests.test_collector_support import (
    FEED_TOKEN,
    PROBE_TOKENS,
    Ctx,
    RecordingPipeline,
    auth,
    make_config,
)


class ViewerRecordingPipeline(RecordingPipeline):
    def __init__(self, store: SqliteStore) -> None:
        super().__init__(store)
        self.viewer_aggregates: list[ViewerAggregate] = []
        self.viewer_durable: list[bool] = []

    def on_viewer_aggregates(self, samples: Sequence[ViewerAggregate]) -> None:
        stored = self.store.viewer_aggregates(samples[0].show_id)
        self.viewer_durable.append(all(s in stored for s in samples))
        self.viewer_aggregates += samples


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Ctx]:
    store = SqliteStore(tmp_path / "collector.db")
    pipeline = ViewerRecordingPipeline(store)
    running = await start_collector(make_config(), store, pipeline)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
    try:
        yield Ctx(running, store, pipeline, http)
    finally:
        await http.close()
        await running.stop()
        store.close()


async def _post(c: Ctx, body: Any, token: str = FEED_TOKEN) -> tuple[int, Any]:
    async with c.http.post(c.url("/api/v1/viewer-aggregates"), json=body,
                           headers=auth(token)) as r:
        return r.status, await r.json()


async def test_viewer_aggregates_are_stored_and_handed_on(c: Ctx) -> None:
    now = time.time()
    samples = [
        {"ts": now - 60, "show_id": "show-1", "region": "ID", "cdn": "cdn-a",
         "device": "ios", "sessions": 1200, "failures": 14, "watched_s": 61_000.0,
         "stalled_s": 420.5},
        {"ts": now, "show_id": "show-1", "isp": "Telkomsel", "sessions": 300},
    ]
    status, body = await _post(c, {"samples": samples})
    assert (status, body) == (200, {"stored": 2})
    stored = c.store.viewer_aggregates("show-1")
    assert [(s.region, s.cdn, s.sessions, s.failures, s.stalled_s) for s in stored] == [
        ("ID", "cdn-a", 1200, 14, 420.5), ("", "", 300, 0, 0.0)]
    assert c.store.viewer_aggregates("show-1", start=now - 10) == stored[1:]
    pipeline = c.pipeline
    assert isinstance(pipeline, ViewerRecordingPipeline)
    assert len(pipeline.viewer_aggregates) == 2 and pipeline.viewer_durable == [True]


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"failures": 2000}, 400, "samples[0].failures"),
        ({"sessions": -1}, 400, "samples[0].sessions"),
        ({"ts": time.time() + 3600}, 400, "samples[0].ts"),
        ({"mood": "happy"}, 400, "samples[0].mood"),
    ],
)
async def test_bad_viewer_aggregates_are_refused_naming_the_field(
    c: Ctx, change: dict[str, Any], status: int, field: str
) -> None:
    sample = {"ts": time.time(), "show_id": "show-1", "sessions": 1000, "failures": 3}
    sample.update(change)
    got, body = await _post(c, {"samples": [sample]})
    assert got == status and body["field"] == field
    assert c.store.viewer_aggregates("show-1") == []


async def test_a_probe_cannot_post_viewer_aggregates(c: Ctx) -> None:
    sample = {"ts": time.time(), "show_id": "show-1", "sessions": 10}
    status, _ = await _post(c, {"samples": [sample]}, PROBE_TOKENS["p1"])
    assert status == 403


def _aggregates(show_id: str, t0: float, t1: float, region: str, bad_isp: str,
                onset: float) -> list[ViewerAggregate]:
    """Per minute and audience slice; after ``onset`` the sessions of one ISP
    of ``region`` fail 6x as often and stall 5x as much."""
    rng = np.random.default_rng(3)
    out = []
    regions = ["ID", "TH", "US", "DE"]
    isps = ["isp-a", "isp-b", "isp-c"]
    cdns = ["cdn-1", "cdn-2"]
    devices = ["ios", "android", "web"]
    for ts in np.arange(t0 + 60, t1 + 1, 60.0):
        for r, isp, cdn, dev in itertools.product(regions, isps, cdns, devices):
            sessions = int(rng.poisson(400))
            bad = ts > onset and r == region and isp == bad_isp
            failures = int(rng.binomial(sessions, 0.012 * (6 if bad else 1)))
            watched = sessions * 50.0
            stalled = watched * 0.004 * (5 if bad else 1) * rng.lognormal(0, 0.1)
            out.append(ViewerAggregate(
                ts=float(ts), show_id=show_id, interval_s=60, region=r, isp=isp, cdn=cdn,
                device=dev, sessions=sessions, failures=failures, watched_s=watched,
                stalled_s=stalled,
            ))
    return out


def test_engine_names_the_slice_whose_players_failed_in_the_stream_incident() -> None:
    sc = Scenario("bw", Cause.BANDWIDTH, "TH", 1.0, seed=3, duration_s=900, onset_s=700,
                  fault_s=120)
    show, gen = generate(sc)
    seconds = list(gen)
    aggs = _aggregates(show.show_id, seconds[0].ts, seconds[-1].ts, "TH", "isp-b",
                       sc.onset_ts)
    engine = DiagnosisEngine(show)
    for sec in seconds:
        engine.add_probe_samples(x for _, x in sec.probes)
        engine.add_business(sec.business)
        engine.add_stock_states(sec.stock)
        engine.add_viewer_aggregates(a for a in aggs if sec.ts - 1 < a.ts <= sec.ts)
        engine.step(sec.ts + 3)
    (inc,) = [i for i in engine.incidents if i.scope.get("region") == "TH"]
    assert inc.cause == Cause.BANDWIDTH
    players = {e.metric: e for e in inc.evidence
               if e.metric in (Metric.FAILURE_RATE, Metric.REBUFFER_RATIO)}
    assert set(players) == {Metric.FAILURE_RATE, Metric.REBUFFER_RATIO}
    fail = players[Metric.FAILURE_RATE]
    assert "region TH isp isp-b" in fail.text
    assert fail.observed is not None and fail.baseline is not None
    assert fail.observed > 4 * fail.baseline
    # Reports that arrive late and out of order are read in time order.
    late = DiagnosisEngine(show)
    late.add_viewer_aggregates(reversed(aggs))
    for sec in seconds:
        late.add_probe_samples(x for _, x in sec.probes)
        late.add_business(sec.business)
        late.add_stock_states(sec.stock)
        late.step(sec.ts + 3)
    (again,) = [i for i in late.incidents if i.scope.get("region") == "TH"]
    assert [e for e in again.evidence if e.metric in players] == list(players.values())
    # Without the platform's reports the incident is diagnosed as before.
    plain = DiagnosisEngine(show)
    for sec in seconds:
        plain.add_probe_samples(x for _, x in sec.probes)
        plain.add_business(sec.business)
        plain.add_stock_states(sec.stock)
        plain.step(sec.ts + 3)
    (same,) = [i for i in plain.incidents if i.scope.get("region") == "TH"]
    assert (same.cause, same.scope, same.start_ts) == (inc.cause, inc.scope, inc.start_ts)
    assert [e for e in inc.evidence if e.metric not in players] == same.evidence
