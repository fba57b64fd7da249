"""`qosmon serve` with its live pipeline, as the shipped config wires it:
what probes post over HTTP becomes an incident while the show runs, and the
show's report is written when the show ends."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import aiohttp
import pytest

from qosmon.collector.app import start_collector
from qosmon.collector.command import build_pipeline
from qosmon.collector.config import CollectorConfig
from qosmon.model import ConnectionState, ProbeBatch, ProbeSample, Show
from qosmon.store import open_store

REPO = Path(__file__).resolve().parents[1]


def _sample(probe: str, region: str, node: str, ts: float, broken_since: float | None
            ) -> ProbeSample:
    broken = broken_since is not None
    return ProbeSample(
        ts=ts, show_id="live-1", stream_id="main", probe_id=probe, region=region,
        edge_node=node, state=ConnectionState.CONNECTED, ttff_ms=150.0,
        rtt_ms=None if broken else 80.0, packets_expected=0 if broken else 80,
        packets_received=0 if broken else 80, loss_pct=None if broken else 0.0,
        bitrate_kbps=0.0 if broken else 720.0, fps=0.0 if broken else 25.0,
        no_frame_ms=(ts - broken_since) * 1000 if broken_since is not None else 40.0,
        chat_sent=1, chat_lost=1 if broken else 0, chat_rtt_ms=None if broken else 80.0,
    )


@pytest.mark.slow  # a live show of half a minute, in real time
@pytest.mark.timeout(90)
async def test_live_pipeline_from_config_diagnoses_and_writes_the_report(tmp_path: Path) -> None:
    tokens = {p: secrets.token_urlsafe(16) for p in ("id-1", "id-2", "th-1", "th-2")}
    feed = secrets.token_urlsafe(16)
    config_file = tmp_path / "collector.toml"
    config = CollectorConfig.model_validate({
        "port": 0,
        "probes": [{"probe_id": p, "token": t} for p, t in tokens.items()],
        "feed_tokens": [feed],
        "live": {"diagnosis_config": str(REPO / "config" / "diagnosis.toml"),
                 "inventory_config": str(REPO / "config" / "inventory.toml"),
                 "report_dir": str(tmp_path / "reports")},
    })
    store = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    pipeline = build_pipeline(config, config_file, store)
    await pipeline.start()
    collector = await start_collector(config, store, pipeline)
    labels = {"id-1": ("ID", "jkt-1"), "id-2": ("ID", "jkt-1"),
              "th-1": ("TH", "bkk-1"), "th-2": ("TH", "bkk-1")}
    start = time.time()
    break_at = start + 25  # ID's edge node stops serving media
    try:
        async with aiohttp.ClientSession(base_url=collector.url) as http:
            show = Show(show_id="live-1", title="Live <test>", start_ts=start,
                        planned_end_ts=start + 40, regions=["ID", "TH"])
            async with http.put("/api/v1/shows/live-1", json=show.model_dump(mode="json"),
                                headers={"Authorization": f"Bearer {feed}"}) as r:
                assert r.status in (200, 201), await r.text()
            # 35 s of show, sent as if live but faster: each second's samples
            # are stamped on the show's timeline as they are posted.
            for k in range(36):
                ts = start + k
                await asyncio.sleep(max(0.0, ts - time.time()))
                for probe, (region, node) in labels.items():
                    since = break_at if region == "ID" and ts >= break_at else None
                    batch = ProbeBatch(batch_id=f"{probe}-{k:04d}", probe_id=probe, sent_ts=ts,
                                       samples=[_sample(probe, region, node, ts, since)])
                    async with http.post("/api/v1/samples", data=batch.model_dump_json(),
                                         headers={"Authorization": f"Bearer {tokens[probe]}",
                                                  "Content-Type": "application/json"}) as r:
                        assert r.status == 200, await r.text()
            async with http.get("/api/v1/shows/live-1/incidents") as r:
                live = await r.json()
            async with http.post("/api/v1/shows/live-1/end", json={"ts": time.time()},
                                 headers={"Authorization": f"Bearer {feed}"}) as r:
                assert r.status == 200, await r.text()
        report = tmp_path / "reports" / "live-1.html"
        for _ in range(100):
            if report.exists():
                break
            await asyncio.sleep(0.1)
        summaries = store.show_summaries()
    finally:
        await collector.stop()
        await pipeline.close()
        store.close()
    # The ended show's summary is stored for history, and history sits next
    # to the reports, linked both ways.
    assert [s.show_id for s in summaries] == ["live-1"]
    scores = {r.region: r.score for r in summaries[0].regions}
    assert scores["TH"] is not None and scores["ID"] is not None
    assert scores["ID"] < scores["TH"]
    assert [i.cause for i in summaries[0].incidents] == ["node_failure"]
    history = (tmp_path / "reports" / "history.html").read_text()
    assert 'href="live-1.html"' in history
    assert 'href="history.html"' in (tmp_path / "reports" / "index.html").read_text()
    assert 'href="history.html"' in report.read_text()
    incidents = live if isinstance(live, list) else live.get("incidents", [])
    assert [(i["cause"], i["scope"].get("region")) for i in incidents] == [
        ("node_failure", "ID")], incidents
    page = report.read_text()
    assert "Live &lt;test&gt;" in page and "node failure" in page
