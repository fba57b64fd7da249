"""The InfluxDB-API backend against a real VictoriaMetrics server (Debian
package): what is written is read back, tags survive awkward characters,
batches are stored once, and the collector runs on it end to end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from qosmon.collector.app import start_collector
from qosmon.model import (
    BusinessSample,
    ConnectionState,
    OnScreen,
    ProbeSample,
    Show,
    StockRecord,
)
from qosmon.store import open_store
from qosmon.store.base import BatchConflictError, StoreError
from qosmon.store.influx import InfluxStore, escape_tag, probe_line
from tests import tsdb_server
from tests.test_collector_support import PROBE_TOKENS, RecordingPipeline, auth, batch, make_config

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


@pytest.fixture
def store(vm: tsdb_server.VictoriaMetrics, tmp_path: Path) -> Iterator[InfluxStore]:
    s = InfluxStore(vm.url, bucket="qosmon", side_path=tmp_path / "side.db")
    yield s
    s.close()


def ps(ts: float, show_id: str, **kw: object) -> ProbeSample:
    d: dict[str, object] = dict(ts=ts, show_id=show_id, stream_id="main", probe_id="p1",
                                region="ID", isp="", edge_node="jkt-1",
                                state=ConnectionState.CONNECTED, rtt_ms=40.5,
                                packets_expected=100, packets_received=97, freeze_count=1,
                                # Rounded: VictoriaMetrics may round a value that
                                # needs all 17 significant digits.
                                received_ts=round(ts + 0.2, 3))
    d.update(kw)
    return ProbeSample.model_validate(d)


def test_escape_tag() -> None:
    assert escape_tag("a b,c=d\\e") == "a\\ b\\,c\\=d\\\\e"
    line = probe_line(ps(1.5, "s x"))
    assert line is not None and line.startswith("qosmon_probe,show_id=s\\ x,stream_id=main,")
    assert ",isp=" not in line  # empty tag left out
    assert line.endswith(" 1500")


def test_probe_samples_round_trip(store: InfluxStore, vm: tsdb_server.VictoriaMetrics) -> None:
    now = round(time.time() - 60, 3)
    show = f"rt-{time.time_ns()}"
    samples = [ps(now + i, show, rtt_ms=None if i == 1 else 40.0 + i) for i in range(5)]
    samples.append(ps(now + 2, show, probe_id="p2", region="TH", state=ConnectionState.FAILED,
                      bitrate_kbps=812.5))
    assert store.write_probe_batch("p1/b1", samples) is True
    assert store.write_probe_batch("p1/b1", samples) is False
    vm.flush()
    got = store.probe_samples(show)
    want = sorted(samples, key=lambda s: (s.ts, s.probe_id, s.stream_id))
    assert got == want
    assert [s.ts for s in store.probe_samples(show, region="TH")] == [now + 2]
    assert [s.ts for s in store.probe_samples(show, start_ts=now + 3, probe_id="p1")] == [
        now + 3, now + 4]


@pytest.mark.parametrize(
    "label",
    ["with space", "com,ma", "equ=als", "tr\\ail\\", 'quo"te', "Jakarta–Süd 雅加达", "a, b=c d"],
)
def test_awkward_tag_values_survive(
    store: InfluxStore, vm: tsdb_server.VictoriaMetrics, label: str
) -> None:
    show = f"tag {label} {time.time_ns()}"
    now = round(time.time() - 30, 3)
    store.write_probe_batch(f"p1/{time.time_ns()}", [ps(now, show, region=label, isp=label,
                                                        probe_id=label)])
    vm.flush()
    got = store.probe_samples(show, region=label)
    assert len(got) == 1
    assert (got[0].show_id, got[0].region, got[0].isp, got[0].probe_id) == (
        show, label, label, label)
    # Read independently of our reader: the server holds the label verbatim.
    exported = vm.export('{__name__="qosmon_probe_rtt_ms"}')
    assert any(series["metric"].get("region") == label for series in exported)


def test_business_and_stock_round_trip(store: InfluxStore, vm: tsdb_server.VictoriaMetrics
                                       ) -> None:
    now = round(time.time() - 120, 3)
    show = f"biz-{time.time_ns()}"
    biz = [BusinessSample(ts=now, show_id=show, region="ID", viewers_online=1200, orders=3),
           BusinessSample(ts=now + 1, show_id=show, sku="SKU 1", orders=2),
           BusinessSample(ts=now + 2, show_id=show)]
    store.write_business(biz)
    wh = f"WH {time.time_ns()}"
    stock = [StockRecord(ts=now, source_ts=now - 30.5, warehouse=wh, sku="A", on_hand=5,
                         full_snapshot=True),
             StockRecord(ts=now + 1, source_ts=now - 10, warehouse=wh, sku="A", on_hand=4)]
    store.write_stock(stock)
    vm.flush()
    assert store.business(show) == biz
    assert [r for r in store.stock(start_ts=now - 1) if r.warehouse == wh] == stock


def test_documents_live_in_the_side_store(store: InfluxStore) -> None:
    show = Show(show_id="side-1", start_ts=time.time(), region_warehouses={"ID": ["WH-ID"]})
    store.put_show(show)
    store.write_on_screen([OnScreen(ts=time.time(), show_id="side-1", sku="A", on=True)])
    assert store.get_show("side-1") == show and store.list_shows() == [show]
    assert len(store.on_screen("side-1")) == 1


def test_unreachable_server_is_a_store_error(tmp_path: Path) -> None:
    s = InfluxStore(f"http://127.0.0.1:{tsdb_server._free_port()}", bucket="b",
                    side_path=tmp_path / "side.db", timeout_s=2)
    try:
        with pytest.raises(StoreError):
            s.write_probe_batch("p1/x", [ps(time.time(), "s")])
        assert not s.has_batch("p1/x")  # not recorded: the retry must write it
        with pytest.raises(StoreError):
            s.probe_samples("s")
    finally:
        s.close()


async def test_collector_on_influx_backend(vm: tsdb_server.VictoriaMetrics, tmp_path: Path
                                           ) -> None:
    store = open_store(f"influx://127.0.0.1:{vm.url.rsplit(':', 1)[1]}/qosmon"
                       f"?side={tmp_path / 'side.db'}")
    running = await start_collector(make_config(), store, RecordingPipeline(store))  # type: ignore[arg-type]
    try:
        show = f"e2e-{time.time_ns()}"
        now = time.time() - 10
        store.put_show(Show(show_id=show, start_ts=now - 60))  # samples need a known show
        body = batch("e2e-00001", [
            {"ts": now + i, "show_id": show, "stream_id": "main", "probe_id": "p1",
             "region": "SG", "state": "connected", "rtt_ms": 30.0 + i} for i in range(3)])
        async with aiohttp.ClientSession() as http:
            for expected_dup in (False, True):
                async with http.post(f"{running.url}/api/v1/samples", json=body,
                                     headers=auth(PROBE_TOKENS["p1"])) as r:
                    assert r.status == 200
                    assert (await r.json())["duplicate"] is expected_dup
            vm.flush()
            async with http.get(f"{running.url}/api/v1/series",
                                params={"show_id": show, "metric": "rtt_ms"}) as r:
                points = (await r.json())["points"]
        assert [p["value"] for p in points] == [30.0, 31.0, 32.0]
    finally:
        await running.stop()
        store.close()


def test_batches_queued_together_are_stored_once_each(
    store: InfluxStore, vm: tsdb_server.VictoriaMetrics
) -> None:
    show = f"group-{time.time_ns()}"
    now = round(time.time() - 120, 3)
    def samples(bid: str) -> list[ProbeSample]:
        return [ps(now + int(bid[4:]) + j / 10, show) for j in range(3)]

    assert store.write_probe_batch("p1/g0", samples("p1/g0")) is True
    # Submitted without waiting, so they queue up behind each other and go
    # to the server in groups; copies of one batch must still count once.
    ids = ["p1/g0", *(f"p1/g{i}" for i in range(1, 30)), "p1/g5", "p1/g29"]
    futures = [store.submit_probe_batch(bid, samples(bid)) for bid in ids]
    # The same id with other samples is a new batch under a reused id.
    reused = store.submit_probe_batch("p1/g7", [ps(now + 999, show)])
    results = [f.result(timeout=30) for f in futures]
    assert results == [False, *[True] * 29, False, False]
    with pytest.raises(BatchConflictError, match="'g7' was stored before with other content"):
        reused.result(timeout=30)
    vm.flush()
    got = store.probe_samples(show)
    assert len(got) == 30 * 3
    assert all(store.has_batch(f"p1/g{i}") for i in range(30))


class _RefusingServer:
    """Stands in for an InfluxDB that refuses some data (400), which
    VictoriaMetrics never does: it holds the first write until released, so
    the next ones queue up as one group."""

    def __init__(self) -> None:
        import http.server

        self.bodies: list[bytes] = []
        self.release = threading.Event()
        self.arrived = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.arrived.set()
                outer.release.wait(timeout=10)
                outer.bodies.append(body)
                refused = b"show_id=refused" in body
                self.send_response(400 if refused else 204)
                payload = b'{"code":"invalid","message":"refused"}' if refused else b""
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def test_a_refused_batch_fails_alone_and_its_group_is_stored(tmp_path: Path) -> None:
    server = _RefusingServer()
    s = InfluxStore(server.url, bucket="b", side_path=tmp_path / "side.db", timeout_s=10)
    try:
        now = time.time() - 60
        first = s.submit_probe_batch("p1/first", [ps(now, "ok")])
        assert server.arrived.wait(timeout=10)  # the writer is inside that request
        group = {bid: s.submit_probe_batch(bid, [ps(now + 1, show)])
                 for bid, show in [("p1/a", "ok"), ("p1/bad", "refused"), ("p1/b", "ok")]}
        server.release.set()
        assert first.result(timeout=20) is True
        with pytest.raises(StoreError, match="write to"):
            group.pop("p1/bad").result(timeout=20)
        assert {k: f.result(timeout=20) for k, f in group.items()} == {"p1/a": True, "p1/b": True}
        assert not s.has_batch("p1/bad") and s.has_batch("p1/a") and s.has_batch("p1/b")
        # One request for the group, refused whole; then each batch alone.
        assert len(server.bodies) == 1 + 1 + 3
        assert server.bodies[1].count(b"\n") == 2  # three lines in one request
    finally:
        s.close()
        server.close()
