"""A probe keeps every sample through a minute-long collector outage: the real
probe (watching the demo origin over WebRTC), the real collector on its SQLite
store, stopped for 60 s and started again on the same port."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from probes.agent import ProbeAgent
from probes.config import ProbeConfig
from probes.uplink import CollectorUplink
from qosmon.collector.app import start_collector
from qosmon.collector.config import CollectorConfig
from qosmon.demo.clip import encode_clip
from qosmon.demo.netpath import Impairment, RegionPath
from qosmon.demo.origin import DemoOrigin
from qosmon.model import ConnectionState, Show
from qosmon.store import open_store

OUTAGE_S = 60.0


@pytest.fixture
async def origin() -> AsyncIterator[DemoOrigin]:
    o = DemoOrigin(encode_clip(seconds=4),
                   {"SG": RegionPath("SG", impairment=Impairment(delay_ms=5))})
    await o.start()
    try:
        yield o
    finally:
        await o.stop()


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_a_minute_without_the_collector_loses_no_sample(
    origin: DemoOrigin, tmp_path: Path
) -> None:
    token = secrets.token_urlsafe(16)
    store = open_store(f"sqlite:///{tmp_path / 'qosmon.db'}")
    # The collector takes samples only for a show it knows.
    store.put_show(Show(show_id="show", start_ts=time.time() - 60))
    config = CollectorConfig.model_validate(
        {"port": 0, "probes": [{"probe_id": "sg-1", "token": token}],
         "live": {"enabled": False}})
    collector = await start_collector(config, store)
    port = int(collector.url.rsplit(":", 1)[1])
    probe_cfg = ProbeConfig.model_validate({
        "labels": {"probe_id": "sg-1", "region": "SG"},
        "token": token,
        "collector_url": collector.url,
        "streams": [{"show_id": "show", "stream_id": "main", "join": "demo",
                     "url": origin.whep_url("SG")}],
        "spool_dir": str(tmp_path / "spool"),
        "ice_host_addresses": ["127.0.0.1"],
    })
    uplink = CollectorUplink.from_config(probe_cfg)
    agent = ProbeAgent(probe_cfg, uplink)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.sleep(4)
        await collector.stop()
        await asyncio.sleep(OUTAGE_S)
        # Everything of the last minute waits on the probe's disk.
        assert uplink.spool.samples >= OUTAGE_S - 2
        collector = await start_collector(config.model_copy(update={"port": port}), store)
        await asyncio.sleep(6)
        stop.set()
        await asyncio.wait_for(task, 15)
        await uplink.aclose()
        emitted = agent.watchers[0].samples_emitted
        stored = store.probe_samples("show", probe_id="sg-1")
        assert emitted >= OUTAGE_S + 8
        assert len(stored) == emitted  # none lost, none twice
        assert len({s.ts for s in stored}) == emitted
        assert sum(s.state == ConnectionState.CONNECTED for s in stored) >= emitted - 2
    finally:
        stop.set()
        await collector.stop()
        store.close()
