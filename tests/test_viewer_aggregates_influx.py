"""The platform's player reports on the InfluxDB-API backend (a real
VictoriaMetrics server): the collector stores them with the backend's other
documents (its SQLite side store, through the embedded store's own code, or
PostgreSQL when several collectors share documents), reads them back by show
and time, and hands them on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from qosmon.collector.app import start_collector
from qosmon.model import ViewerAggregate
from qosmon.store import open_store
from qosmon.store.base import StoresViewerAggregates
from qosmon.store.influx import InfluxStore
from tests import postgres_server, tsdb_server
from tests.test_collector_support import FEED_TOKEN, auth, make_config
from tests.test_viewer_aggregates import ViewerRecordingPipeline

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        not tsdb_server.available(),
        reason="victoria-metrics not installed (apt install victoria-metrics)",
    ),
]


@pytest.fixture(scope="module")
def vm() -> Iterator[tsdb_server.VictoriaMetrics]:
    with tsdb_server.victoria_metrics() as server:
        yield server


def _open(vm: tsdb_server.VictoriaMetrics, tmp_path: Path, dsn: str | None) -> InfluxStore:
    return InfluxStore(vm.url, bucket="qosmon", side_path=tmp_path / "side.db",
                       documents_dsn=dsn)


@pytest.fixture(scope="module")
def pg() -> Iterator[str | None]:
    if not postgres_server.available():
        yield None
        return
    with postgres_server.postgres() as dsn:
        yield dsn


@pytest.mark.parametrize("documents", ["sqlite", "postgres"])
def test_aggregates_round_trip_and_survive_a_reopen(
    vm: tsdb_server.VictoriaMetrics, tmp_path: Path, pg: str | None, documents: str
) -> None:
    if documents == "postgres" and pg is None:
        pytest.skip("PostgreSQL not installed (Debian package postgresql)")
    dsn = pg if documents == "postgres" else None
    show = f"s1-{time.time_ns()}"  # one database for both runs
    now = time.time()
    rows = [
        ViewerAggregate(ts=now - 120, show_id=show, region="ID", isp="Telkomsel",
                        sessions=900, failures=12, watched_s=50_000.0, stalled_s=310.5),
        ViewerAggregate(ts=now - 60, show_id=show, region="TH", cdn="cdn-b",
                        sessions=400, failures=2),
        ViewerAggregate(ts=now - 60, show_id=show + "-2", sessions=10),
    ]
    store = _open(vm, tmp_path, dsn)
    try:
        assert isinstance(store, StoresViewerAggregates)
        store.write_viewer_aggregates(rows)
        assert store.viewer_aggregates(show) == rows[:2]
        assert store.viewer_aggregates(show, start=now - 90) == rows[1:2]
        assert store.viewer_aggregates(show, end=now - 90) == rows[:1]
    finally:
        store.close()
    again = _open(vm, tmp_path, dsn)
    try:
        assert again.viewer_aggregates(show + "-2") == rows[2:]
    finally:
        again.close()


async def test_collector_on_influx_accepts_viewer_aggregates(
    vm: tsdb_server.VictoriaMetrics, tmp_path: Path
) -> None:
    store = open_store(f"influx://127.0.0.1:{vm.url.rsplit(':', 1)[1]}/qosmon"
                       f"?side={tmp_path / 'side.db'}")
    pipeline = ViewerRecordingPipeline(store)  # type: ignore[arg-type]
    running = await start_collector(make_config(), store, pipeline)  # type: ignore[arg-type]
    try:
        now = time.time()
        samples = [
            {"ts": now - 60, "show_id": "show-1", "region": "ID", "device": "ios",
             "sessions": 1200, "failures": 14, "watched_s": 61_000.0, "stalled_s": 420.5},
            {"ts": now, "show_id": "show-1", "isp": "Telkomsel", "sessions": 300},
        ]
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{running.url}/api/v1/viewer-aggregates",
                                 json={"samples": samples}, headers=auth(FEED_TOKEN)) as r:
                assert (r.status, await r.json()) == (200, {"stored": 2})
            bad = dict(samples[0], failures=5000)
            async with http.post(f"{running.url}/api/v1/viewer-aggregates",
                                 json={"samples": [bad]}, headers=auth(FEED_TOKEN)) as r:
                assert r.status == 400
                assert (await r.json())["field"] == "samples[0].failures"
        assert isinstance(store, StoresViewerAggregates)
        stored = store.viewer_aggregates("show-1")
        assert [(s.region, s.isp, s.sessions, s.failures, s.stalled_s) for s in stored] == [
            ("ID", "", 1200, 14, 420.5), ("", "Telkomsel", 300, 0, 0.0)]
        # Handed on only once durable, as on the embedded store.
        assert len(pipeline.viewer_aggregates) == 2 and pipeline.viewer_durable == [True]
    finally:
        await running.stop()
        store.close()
