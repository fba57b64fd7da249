"""Two `qosmon serve` processes sharing PostgreSQL (documents, outbox, show
leases) and VictoriaMetrics (time series). The one diagnosing a show is
SIGKILLed mid-incident; its probes fail over to the other, which takes the
show over once the lease runs out: the incident stays one incident, it
resolves when the fault ends, the webhook receiver gets one firing and one
resolved, and a new fault is diagnosed by the survivor."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from qosmon.alerting import signing
from qosmon.store.postgres import PostgresDocuments
from tests import postgres_server, tsdb_server
from tests.alertmanager_server import Receiver
from tests.collector_process import (
    HOOK_SECRET,
    CollectorProcess,
    Deployment,
    ShowPlayer,
    node_failures,
)

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not postgres_server.available(), reason="PostgreSQL not installed"),
    pytest.mark.skipif(not tsdb_server.available(), reason="victoria-metrics not installed"),
]

SHOW = "takeover-1"
ID_KEY = f"qosmon:{SHOW}:ID:jkt-1:node_failure"


def _statuses(rx: Receiver, key: str) -> list[str]:
    return [a["status"] for r in rx.requests for a in r.json()["alerts"] if a["key"] == key]


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_second_collector_takes_the_show_over_when_the_first_is_killed(
    tmp_path: Path,
) -> None:
    rx = Receiver()
    await rx.start()
    figures: dict[str, Any] = {}
    with postgres_server.postgres() as dsn, tsdb_server.victoria_metrics() as vm:
        d = Deployment(tmp_path, f"influx://{vm.url.removeprefix('http://')}/qosmon"
                       "?documents_env=QOSMON_TEST_PG", f"{rx.url}/hook")
        env = {"QOSMON_TEST_PG": dsn}
        d.extra_live = 'collector_id = "a"\nlease_ttl_s = 6\nlease_renew_s = 2\n'
        a = CollectorProcess(d.write("a"), env)
        d.extra_live = 'collector_id = "b"\nlease_ttl_s = 6\nlease_renew_s = 2\n'
        b = CollectorProcess(d.write("b"), env)
        a.start()
        b.start()
        player = ShowPlayer(d, SHOW, a.url)
        try:
            await player.put_show()
            for _ in range(15):
                await player.second()
            player.broken["ID"] = time.time()

            async def id_open() -> dict[str, Any] | None:
                found = [i for i in node_failures(await player.incidents(), "ID")
                         if i["end_ts"] is None]
                return found[0] if found else None

            before = await player.play_until(id_open, 30, "the ID node failure")

            async def fired() -> bool:
                return _statuses(rx, ID_KEY) == ["firing"]

            await player.play_until(fired, 15, "the firing at the receiver")
            for _ in range(2):
                await player.second()
            holders = PostgresDocuments(dsn)
            try:
                assert holders.lease_holders()[SHOW] == "a"
            finally:
                holders.close()

            a.kill()
            t_kill = time.monotonic()
            player.url = b.url  # the probes fail over to the other collector

            async def taken_over() -> dict[str, Any] | None:
                h = await player.health()
                return h if SHOW in h["live"]["resumed_after_s"] else None

            await player.play_until(taken_over, 40, "the second collector taking over")
            figures["kill_to_diagnosis_s"] = round(time.monotonic() - t_kill, 2)
            for _ in range(6):  # the fault goes on under the new holder
                await player.second()
            player.broken["ID"] = None

            async def id_ended() -> dict[str, Any] | None:
                found = node_failures(await player.incidents(), "ID")
                return found[0] if len(found) == 1 and found[0]["end_ts"] is not None else None

            after = await player.play_until(id_ended, 40, "the ID incident to end")
            assert after["incident_id"] == before["incident_id"]

            async def resolved() -> bool:
                return "resolved" in _statuses(rx, ID_KEY)

            await player.play_until(resolved, 30, "the resolve at the receiver")
            player.broken["TH"] = time.time()

            async def th_open() -> list[dict[str, Any]]:
                return node_failures(await player.incidents(), "TH")

            await player.play_until(th_open, 30, "the TH node failure after the takeover")
            await player.end_show()
            incidents = await player.incidents()
            report = tmp_path / "reports" / f"{SHOW}.html"
            for _ in range(150):
                if report.exists():
                    break
                await asyncio.sleep(0.1)
            assert report.exists()
        finally:
            await player.close()
            a.kill()
            b.stop()
            await rx.stop()
    assert len(node_failures(incidents, "ID")) == 1, incidents
    assert _statuses(rx, ID_KEY) == ["firing", "resolved"]
    ids = [r.headers[signing.ID_HEADER] for r in rx.requests]
    assert len(set(ids)) == len(ids)
    for r in rx.requests:
        assert signing.verify(HOOK_SECRET, r.headers, r.body, r.received) is None
    print(f"\ntakeover figures: {figures}")
