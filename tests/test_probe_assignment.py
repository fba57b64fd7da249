"""Central assignment, end to end: a real ``qosmon serve`` process, two real
``qosmon probe`` processes (regions SG and US) whose configs list no stream,
and the demo origin. A show created on the collector with a stream for SG is
picked up by the SG probe within seconds, never by the US one, and dropped
when the show ends; neither probe is touched or restarted."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from probes.ice_host_pin import pin_host_addresses
from qosmon.demo.clip import encode_clip
from qosmon.demo.netpath import Impairment, RegionPath
from qosmon.demo.origin import DemoOrigin

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FEED = "feed-" + secrets.token_hex(8)
PROBE_TOKENS = {"sg-1": "probe-sg-" + secrets.token_hex(8),
                "us-1": "probe-us-" + secrets.token_hex(8)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def origin() -> AsyncIterator[DemoOrigin]:
    # The origin runs in this process: its ICE offers loopback only (the
    # probes are other processes, so nothing else pins it here).
    pin_host_addresses(["127.0.0.1"])
    o = DemoOrigin(encode_clip(seconds=4),
                   {"SG": RegionPath("SG", impairment=Impairment(delay_ms=5))})
    await o.start()
    try:
        yield o
    finally:
        await o.stop()
        pin_host_addresses(None)


async def spawn(*args: str, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "wb") as f:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qosmon.cli", *args, cwd=REPO, env=env,
            stdout=f, stderr=asyncio.subprocess.STDOUT)


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout} s")


@pytest.mark.timeout(120)
async def test_show_streams_reach_the_probes_of_their_region(origin: DemoOrigin,
                                                             tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (tmp_path / "collector.toml").write_text(f"""
host = "127.0.0.1"
port = {port}
store = "sqlite://{tmp_path / 'qosmon.db'}"
feed_tokens = ["{FEED}"]
heartbeat_interval_s = 2.0
[live]
enabled = false
""" + "".join(f'[[probes]]\nprobe_id = "{p}"\ntoken = "{t}"\n'
              for p, t in PROBE_TOKENS.items()))
    procs = [await spawn("serve", "--config", str(tmp_path / "collector.toml"),
                         log=tmp_path / "collector.log")]
    try:
        async with aiohttp.ClientSession() as http:
            async def healthy() -> bool:
                try:
                    async with http.get(base + "/healthz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(healthy, 30, "collector")
            for probe_id, region in (("sg-1", "SG"), ("us-1", "US")):
                cfg = tmp_path / f"{probe_id}.toml"
                cfg.write_text(f"""
collector_url = "{base}"
token = "{PROBE_TOKENS[probe_id]}"
ice_host_addresses = ["127.0.0.1"]
assignment_poll_s = 2.0
[labels]
probe_id = "{probe_id}"
region = "{region}"
""")
                procs.append(await spawn("probe", "--config", str(cfg),
                                         log=tmp_path / f"{probe_id}.log"))

            async def assignments() -> dict[str, Any]:
                async with http.get(base + "/api/v1/assignments") as r:
                    body = await r.json()
                return {p["probe_id"]: p for p in body["probes"]}

            async def both_registered() -> dict[str, Any] | None:
                got = await assignments()
                return got if set(got) == set(PROBE_TOKENS) else None

            registered = await wait_for(both_registered, 30, "probe registration")
            assert registered["sg-1"]["labels"]["region"] == "SG"
            assert registered["sg-1"]["capabilities"]["joins"] == ["whep", "janus", "demo"]
            assert registered["sg-1"]["streams"] == [] and registered["us-1"]["streams"] == []

            # The show, with its stream for SG, defined once on the collector.
            feed = {"Authorization": f"Bearer {FEED}"}
            show_id = "show-" + secrets.token_hex(4)
            show = {"show_id": show_id, "start_ts": time.time(), "regions": ["SG", "US"],
                    "streams": [{"stream_id": "main", "join": "demo",
                                 "url": origin.whep_url("SG"), "regions": ["SG"]}]}
            created = time.time()
            async with http.put(f"{base}/api/v1/shows/{show_id}", json=show,
                                headers=feed) as r:
                assert r.status == 200, await r.text()

            async def points(probe_id: str) -> list[dict[str, Any]]:
                async with http.get(base + "/api/v1/series", params={
                        "show_id": show_id, "metric": "fps", "minutes": "5",
                        "probe_id": probe_id}) as r:
                    assert r.status == 200, await r.text()
                    return list((await r.json())["points"])

            async def watching() -> list[dict[str, Any]]:
                return [p for p in await points("sg-1") if p["value"]]

            first = await wait_for(lambda: points("sg-1"), 15, "sample of the assigned stream")
            picked_up_s = min(p["ts"] for p in first) - created
            await wait_for(watching, 15, "frames on the assigned stream")
            print(f"assignment picked up after {picked_up_s:.2f} s (first sample's ts)")
            assert picked_up_s <= 5.0, picked_up_s
            assert {p["stream_id"] for p in first} == {"main"}
            got = await assignments()
            assert got["sg-1"]["streams"] == [f"{show_id}/main"]
            assert got["us-1"]["streams"] == []

            async def heartbeat_lists_it() -> bool:
                async with http.get(base + "/api/v1/fleet") as r:
                    fleet = {p["probe_id"]: p for p in (await r.json())["probes"]}
                return fleet["sg-1"]["streams"] == [f"{show_id}/main"]

            # The probe's heartbeats name what it watches, assigned streams too.
            await wait_for(heartbeat_lists_it, 12, "heartbeat naming the assigned stream")

            # The show ends: the probe stops watching, without being touched.
            async with http.post(f"{base}/api/v1/shows/{show_id}/end",
                                 json={"ts": time.time()}, headers=feed) as r:
                assert r.status == 200, await r.text()
            ended = time.time()

            async def dropped() -> bool:
                return (await assignments())["sg-1"]["streams"] == []

            await wait_for(dropped, 10, "assignment dropped")
            await asyncio.sleep(4.0)  # let anything still in flight arrive
            settled = await points("sg-1")
            assert max(p["ts"] for p in settled) <= ended + 5.0
            await asyncio.sleep(3.0)
            assert len(await points("sg-1")) == len(settled), "samples after the show ended"
            assert await points("us-1") == []
            assert all(p.returncode is None for p in procs), "a process exited"
            assert not origin.viewers, "the probe left the origin"
    finally:
        for p in reversed(procs):
            await stop(p)
    for probe_id, token in PROBE_TOKENS.items():
        log = (tmp_path / f"{probe_id}.log").read_text()
        assert token not in log
    sg_log = (tmp_path / "sg-1.log").read_text()
    # Started once (every poll repeats the same assignment), stopped once.
    assert sg_log.count(f"watch {show_id}/main (") == 1, sg_log
    assert sg_log.count(f"stop watching {show_id}/main") == 1, sg_log
    print(json.dumps({"picked_up_s": round(picked_up_s, 2)}))
