"""kill -9 of `qosmon serve` in the middle of an incident, then a restart:
diagnosis goes on, the incident stays one incident (same id) and resolves
when the fault ends, the webhook receiver gets exactly one firing and one
resolved for it (also when it was down across the restart), and a new
fault after the restart is diagnosed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from qosmon.alerting import signing
from qosmon.store.sqlite import SqliteStore
from tests.alertmanager_server import Receiver
from tests.collector_process import (
    HOOK_SECRET,
    CollectorProcess,
    Deployment,
    ShowPlayer,
    node_failures,
)

ID_KEY = "qosmon:restart-1:ID:jkt-1:node_failure"


def _statuses(rx: Receiver, key: str) -> list[str]:
    return [a["status"] for r in rx.requests for a in r.json()["alerts"] if a["key"] == key]


async def _scenario(tmp_path: Path, receiver_down: bool) -> dict[str, Any]:
    rx = Receiver()
    if not receiver_down:
        await rx.start()
    d = Deployment(tmp_path, f"sqlite://{tmp_path / 'q.db'}", f"{rx.url}/hook")
    collector = CollectorProcess(d.write())
    collector.start()
    player = ShowPlayer(d, "restart-1", collector.url)
    figures: dict[str, Any] = {}
    try:
        await player.put_show()
        for _ in range(15):  # healthy: the probes' baselines form
            await player.second()
        player.broken["ID"] = time.time()

        async def id_open() -> dict[str, Any] | None:
            found = [i for i in node_failures(await player.incidents(), "ID")
                     if i["end_ts"] is None]
            return found[0] if found else None

        before = await player.play_until(id_open, 30, "the ID node failure")
        if not receiver_down:
            async def fired() -> bool:
                return _statuses(rx, ID_KEY) == ["firing"]
            await player.play_until(fired, 15, "the firing at the receiver")
        for _ in range(2):
            await player.second()

        collector.kill()
        t_kill = time.monotonic()
        await asyncio.sleep(1.0)  # down for a moment: nothing is posted
        collector.start()
        player.url = collector.url
        figures["restart_to_listening_s"] = round(collector.started_s, 2)

        async def resumed() -> dict[str, Any] | None:
            h = await player.health()
            return h if h["live"]["resumed_after_s"] else None

        health = await player.play_until(resumed, 20, "diagnosis resumed after the restart")
        figures["kill_to_diagnosis_s"] = round(time.monotonic() - t_kill, 2)
        figures["start_to_diagnosis_s"] = health["live"]["resumed_after_s"]["restart-1"]
        figures["recovery_s"] = health["live"]["recovery_s"]
        assert health["live"]["recovered_shows"] == 1
        for _ in range(6):  # the fault goes on after the restart
            await player.second()
        if receiver_down:
            await rx.start()
        player.broken["ID"] = None

        async def id_ended() -> dict[str, Any] | None:
            found = node_failures(await player.incidents(), "ID")
            return found[0] if len(found) == 1 and found[0]["end_ts"] is not None else None

        after = await player.play_until(id_ended, 40, "the ID incident to end")
        assert after["incident_id"] == before["incident_id"]
        assert after["start_ts"] == before["start_ts"]

        async def resolved() -> bool:
            return "resolved" in _statuses(rx, ID_KEY)

        await player.play_until(resolved, 30, "the resolve at the receiver")

        # A second fault, after the restart, is diagnosed.
        player.broken["TH"] = time.time()

        async def th_open() -> list[dict[str, Any]]:
            return node_failures(await player.incidents(), "TH")

        await player.play_until(th_open, 30, "the TH node failure after the restart")
        for _ in range(3):
            await player.second()
        await player.end_show()
        incidents = await player.incidents()
        # The show's end is processed on the collector's next tick.
        report = tmp_path / "reports" / "restart-1.html"
        for _ in range(100):
            if report.exists():
                break
            await asyncio.sleep(0.1)
        assert report.exists()
        # The report says the page went out late when it did.
        assert ("delivered late" in report.read_text()) == receiver_down
    finally:
        await player.close()
        collector.stop()
        await rx.stop()

    assert len(node_failures(incidents, "ID")) == 1, incidents
    assert _statuses(rx, ID_KEY) == ["firing", "resolved"]
    ids = [r.headers[signing.ID_HEADER] for r in rx.requests]
    assert len(set(ids)) == len(ids)
    for r in rx.requests:
        assert signing.verify(HOOK_SECRET, r.headers, r.body, r.received) is None
    store = SqliteStore(tmp_path / "q.db")
    try:
        deliveries = [x for x in store.alert_deliveries("restart-1") if x.alert_key == ID_KEY]
        entries = store.outbox_entries("restart-1")
    finally:
        store.close()
    firing_ok = [x for x in deliveries if x.ok and x.status == "firing"]
    assert len(firing_ok) == 1
    # Across the restart with the receiver down, the firing went late.
    assert firing_ok[0].late == receiver_down
    assert all(e.state in ("delivered", "superseded") for e in entries), entries
    print(f"\nrestart figures ({'receiver down' if receiver_down else 'receiver up'}): "
          f"{figures}")
    return figures


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_kill_9_mid_incident_keeps_one_incident_and_one_page(tmp_path: Path) -> None:
    await _scenario(tmp_path, receiver_down=False)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_receiver_down_across_the_restart_gets_firing_then_resolve(
    tmp_path: Path,
) -> None:
    await _scenario(tmp_path, receiver_down=True)
