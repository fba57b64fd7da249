"""What a restart and a takeover cost: seconds from SIGKILL of the collector
diagnosing a show (mid-incident) until diagnosis of that show goes on.

    PYTHONPATH=. python bench/restart.py [--runs 2] [--lease-ttl 6] [--down 1]

Restart: one `qosmon serve` on SQLite, killed and started again after
``--down`` seconds. Takeover: two `qosmon serve` on PostgreSQL +
VictoriaMetrics (both started here), the holder killed, its probes moved to
the other at once, which takes the show when the lease (``--lease-ttl``)
runs out. Both play the same show (4 probes, an edge node failing in one
region) through the HTTP API. "Diagnosis goes on" is the moment the
collector's /healthz reports the show in ``resumed_after_s``; the incident
is checked to keep its id. Prints one line per run, then one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import postgres_server, tsdb_server  # noqa: E402
from tests.alertmanager_server import Receiver  # noqa: E402
from tests.collector_process import (  # noqa: E402
    CollectorProcess,
    Deployment,
    ShowPlayer,
    node_failures,
)


async def _open_incident(player: ShowPlayer) -> dict[str, Any]:
    async def id_open() -> dict[str, Any] | None:
        found = [i for i in node_failures(await player.incidents(), "ID") if i["end_ts"] is None]
        return found[0] if found else None

    for _ in range(15):
        await player.second()
    player.broken["ID"] = time.time()
    got: dict[str, Any] = await player.play_until(id_open, 30, "the ID node failure")
    return got


async def _resumed(player: ShowPlayer, show: str, t_kill: float) -> tuple[float, bool]:
    async def resumed() -> bool:
        try:
            h = await player.health()
        except Exception:
            return False
        return show in h["live"]["resumed_after_s"]

    await player.play_until(resumed, 60, "diagnosis going on")
    took = time.monotonic() - t_kill
    return took, True


async def restart_run(tmp: Path, down_s: float) -> dict[str, Any]:
    rx = Receiver()
    await rx.start()
    d = Deployment(tmp, f"sqlite://{tmp / 'q.db'}", f"{rx.url}/hook")
    c = CollectorProcess(d.write())
    c.start()
    player = ShowPlayer(d, "bench-restart", c.url)
    try:
        await player.put_show()
        before = await _open_incident(player)
        c.kill()
        t_kill = time.monotonic()
        await asyncio.sleep(down_s)
        c.start()
        player.url = c.url
        took, _ = await _resumed(player, "bench-restart", t_kill)
        now = [i for i in node_failures(await player.incidents(), "ID")]
        same = [i["incident_id"] for i in now] == [before["incident_id"]]
        return {"kill_to_diagnosis_s": round(took, 2), "down_s": down_s,
                "exec_to_listening_s": round(c.started_s, 2), "same_incident": same}
    finally:
        await player.close()
        c.stop()
        await rx.stop()


async def takeover_run(tmp: Path, lease_ttl_s: float) -> dict[str, Any]:
    rx = Receiver()
    await rx.start()
    with postgres_server.postgres() as dsn, tsdb_server.victoria_metrics() as vm:
        d = Deployment(tmp, f"influx://{vm.url.removeprefix('http://')}/qosmon"
                       "?documents_env=QOSMON_BENCH_PG", f"{rx.url}/hook")
        env = {"QOSMON_BENCH_PG": dsn}
        renew = lease_ttl_s / 3
        d.extra_live = f'collector_id = "a"\nlease_ttl_s = {lease_ttl_s}\nlease_renew_s = {renew}\n'
        a = CollectorProcess(d.write("a"), env)
        d.extra_live = f'collector_id = "b"\nlease_ttl_s = {lease_ttl_s}\nlease_renew_s = {renew}\n'
        b = CollectorProcess(d.write("b"), env)
        a.start()
        b.start()
        player = ShowPlayer(d, "bench-takeover", a.url)
        try:
            await player.put_show()
            before = await _open_incident(player)
            a.kill()
            t_kill = time.monotonic()
            player.url = b.url
            took, _ = await _resumed(player, "bench-takeover", t_kill)
            now = node_failures(await player.incidents(), "ID")
            same = [i["incident_id"] for i in now] == [before["incident_id"]]
            return {"kill_to_diagnosis_s": round(took, 2), "lease_ttl_s": lease_ttl_s,
                    "same_incident": same}
        finally:
            await player.close()
            a.kill()
            b.stop()
            await rx.stop()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--lease-ttl", type=float, default=6.0)
    ap.add_argument("--down", type=float, default=1.0, help="seconds the collector stays down")
    args = ap.parse_args()
    restart: list[dict[str, Any]] = []
    takeover: list[dict[str, Any]] = []
    for k in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="qosmon-bench-") as tmp:
            r = await restart_run(Path(tmp), args.down)
        print(f"restart  run {k + 1}: {r}", flush=True)
        restart.append(r)
        if postgres_server.available() and tsdb_server.available():
            with tempfile.TemporaryDirectory(prefix="qosmon-bench-") as tmp:
                t = await takeover_run(Path(tmp), args.lease_ttl)
            print(f"takeover run {k + 1}: {t}", flush=True)
            takeover.append(t)
    r_med = round(statistics.median(x["kill_to_diagnosis_s"] for x in restart), 2)
    out: dict[str, Any] = {
        "restart_kill_to_diagnosis_s": r_med,
        "restart_down_s": args.down,
        "restart_same_incident": all(x["same_incident"] for x in restart),
    }
    if takeover:
        t_med = round(statistics.median(x["kill_to_diagnosis_s"] for x in takeover), 2)
        out.update({
            "takeover_kill_to_diagnosis_s": t_med,
            "takeover_lease_ttl_s": args.lease_ttl,
            "takeover_same_incident": all(x["same_incident"] for x in takeover),
            "takeover_over_restart": round(t_med / r_med, 2),
        })
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
