"""A real squeeze, end to end: a libwebrtc sender (headless Chromium behind a
Bearer WHEP endpoint, tests/libwebrtc_origin.py) meets a 600 kbit/s tc tbf
on its viewers' path by lowering its bitrate instead of losing packets, and
the collector's live diagnosis must still call that bandwidth, in the
squeezed region only. The same sender on a path that drops 15 % of packets
(nftables random drop) lowers its rate too, but there loss is the fault:
that must stay packet loss, not become bandwidth.

Two probes of region "lab" (``qosmon probe --config``, each its own process
in its own network namespace, tests/viewer_netns.py, a tbf on each path)
and one of region "ref" on loopback push to a real ``qosmon serve``, which
listens on the root end of the first namespace's veth (the only address all
three reach; the second namespace is let through to that one port). The
incidents asked of its API are what its live pipeline diagnosed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qosmon.model import Show
from tests.chromium import chromium_path
from tests.libwebrtc_origin import LibwebrtcOrigin
from tests.serve_process import CollectorProcess, live_collector_config
from tests.viewer_netns import ViewerNetns, skip_unless_netns_possible

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.server]

REPO = Path(__file__).resolve().parent.parent
WHEP_TOKEN = "squeeze-test-whep-token"
SHOW = "squeeze-e2e"
# libwebrtc ramps up over ~20 s; the probes' baseline is their healthy
# seconds after that.
WARMUP_S = 50.0
SQUEEZE_S = 40.0
RATE_KBIT = 600
LOSS_PCT = 15


def _probe_config(path: Path, probe_id: str, region: str, collector: str, token: str,
                  whep_url: str, ice_host: str) -> Path:
    path.write_text(
        f'collector_url = "{collector}"\ntoken = "{token}"\nassignment = false\n'
        f'batch_interval_s = 1.0\nice_host_addresses = ["{ice_host}"]\n'
        f'[labels]\nprobe_id = "{probe_id}"\nregion = "{region}"\nedge_node = "{region}-edge"\n'
        f'[[streams]]\nshow_id = "{SHOW}"\nstream_id = "main"\njoin = "whep"\n'
        f'url = "{whep_url}"\ntoken_env = "QOSMON_WHEP_TOKEN"\n'
    )
    return path


@pytest.fixture
def namespaces() -> Iterator[tuple[ViewerNetns, ViewerNetns]]:
    skip_unless_netns_possible()
    if chromium_path() is None:
        pytest.skip("needs Debian's chromium (make sysdeps installs it)")
    with ViewerNetns(1) as a, ViewerNetns(2) as b:
        yield a, b


async def _incidents(http: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with http.get(f"{url}/api/v1/shows/{SHOW}/incidents") as r:
        assert r.status == 200, await r.text()
        got: list[dict[str, Any]] = (await r.json())["incidents"]
        return got


@pytest.mark.timeout(300)
@pytest.mark.parametrize("impairment", ["squeeze", "loss"])
async def test_squeeze_is_bandwidth_and_loss_is_packet_loss(
    namespaces: tuple[ViewerNetns, ViewerNetns], tmp_path: Path, impairment: str,
) -> None:
    cause = "bandwidth" if impairment == "squeeze" else "packet_loss"
    a, b = namespaces
    tokens = {p: secrets.token_urlsafe(24) for p in ("lab-1", "lab-2", "ref-1")}
    feed = secrets.token_urlsafe(24)
    cfg = live_collector_config(tmp_path, tokens, feed, host=a.root_ip)
    collector = CollectorProcess(cfg)
    procs: list[asyncio.subprocess.Process] = []
    files = contextlib.ExitStack()
    try:
        port = collector.url.rsplit(":", 1)[1]
        # The second namespace reaches the collector's one port, nothing else.
        b.netns("nft", "insert", "rule", "inet", "qv", "out", "ip", "daddr", a.root_ip,
                "tcp", "dport", port, "accept")
        hosts = (a.root_ip, b.root_ip, "127.0.0.1")
        async with LibwebrtcOrigin(WHEP_TOKEN, hosts=hosts) as origin, \
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            start = time.time()
            show = Show(show_id=SHOW, title="squeeze", start_ts=start,
                        planned_end_ts=start + 600, regions=["lab", "ref"])
            async with http.put(f"{collector.url}/api/v1/shows/{SHOW}",
                                json=show.model_dump(mode="json"),
                                headers={"Authorization": f"Bearer {feed}"}) as r:
                assert r.status == 200, await r.text()
            env = {**os.environ, "PYTHONPATH": str(REPO), "QOSMON_WHEP_TOKEN": WHEP_TOKEN}
            where = [("lab-1", "lab", a, a.root_ip, a.ns_ip),
                     ("lab-2", "lab", b, b.root_ip, b.ns_ip),
                     ("ref-1", "ref", None, "127.0.0.1", "127.0.0.1")]
            for probe_id, region, ns, host, ice in where:
                conf = _probe_config(tmp_path / f"{probe_id}.toml", probe_id, region,
                                     collector.url, tokens[probe_id],
                                     origin.url("h264", host=host), ice)
                cmd = [sys.executable, "-m", "qosmon.cli", "probe", "--config", str(conf)]
                if ns is not None:
                    cmd = ["ip", "netns", "exec", ns.ns, *cmd]
                procs.append(await asyncio.create_subprocess_exec(
                    *cmd, cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL,
                    stderr=files.enter_context((tmp_path / f"{probe_id}.log").open("w")),
                    start_new_session=True))
            await asyncio.sleep(WARMUP_S)
            before = await _incidents(http, collector.url)
            squeeze_ts = time.time()
            for ns in (a, b):
                if impairment == "squeeze":
                    ns.set_rate(RATE_KBIT)
                else:
                    ns.set_loss(LOSS_PCT)
            found: list[dict[str, Any]] = []
            deadline = time.monotonic() + SQUEEZE_S
            while time.monotonic() < deadline and not found:
                await asyncio.sleep(2)
                found = [i for i in await _incidents(http, collector.url)
                         if i["cause"] == cause]
            detected_s = time.time() - squeeze_ts
            # A wrong name could come later in the impairment: watch it all.
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            after = await _incidents(http, collector.url)
            dropped = a.rate_dropped() + b.rate_dropped()
            for ns in (a, b):
                ns.set_rate(None)
                ns.set_loss(0)
    finally:
        for p in procs:
            if p.returncode is None:
                p.terminate()
        for p in procs:
            await asyncio.wait_for(p.wait(), 20)
        files.close()
        collector.stop()
    logs = "".join((tmp_path / f"{p}.log").read_text()[-800:] for p in tokens)
    assert before == [], before  # the clean warm-up is no incident
    assert found, (after, logs)
    (inc,) = found
    assert inc["scope"].get("region") == "lab", inc
    assert set(inc["probes"]) == {"lab-1", "lab-2"}, inc
    assert inc["start_ts"] >= squeeze_ts - 3, (inc, squeeze_ts)
    ev = {e["metric"]: e for e in inc["evidence"]}
    others = [i for i in after if i["incident_id"] != inc["incident_id"]]
    print(f"{cause} found {detected_s:.1f} s after the impairment; tbf dropped {dropped} "
          f"packets; {inc['summary']}")
    # Nothing else was called: no other cause, nothing in the clean region.
    assert not [i for i in others if i["cause"] != "probe_local"], [
        (i["cause"], i["scope"], i["start_ts"] - squeeze_ts, i["summary"]) for i in others]
    if impairment == "loss":
        assert inc["evidence"][0]["metric"] == "loss_pct", inc["evidence"]
        assert ev["loss_pct"]["observed"] > 5.0, ev
        return
    # Named for what the sender did: the received rate fell against the
    # probes' own baseline while the path lost next to nothing.
    assert inc["evidence"][0]["metric"] == "received_kbps", inc["evidence"]
    rx = ev["received_kbps"]
    assert rx["observed"] < rx["threshold"] < rx["baseline"], rx
    assert ev["loss_pct"]["observed"] is not None and ev["loss_pct"]["observed"] <= 5.0, ev
    assert "lowered its bitrate" in inc["summary"], inc["summary"]
