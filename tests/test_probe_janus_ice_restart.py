"""A viewer's path to Janus breaks under a running session: a browser
restarts ICE and keeps watching; so does the probe, through the streaming
plugin's ``watch`` with ``"restart": true`` (and the TextRoom's ``restart``
for the chat's PeerConnection).

Real Janus in a namespace (tests/janus_harness.py), fed by ffmpeg, with
``api_secret`` set so every request (the restart's too) must carry it; the
probe runs in this process and talks to Janus through a forwarding proxy
that keeps every request it forwarded (what the probe asked Janus). The
break: nftables in Janus's namespace drops every UDP packet to and from the
ports the probe has open at that moment, as when a NAT mapping or a mobile
handover takes the old path away; a new ICE path (new sockets) gets through.
The probe must carry on in the same Janus session (one ``create``, one plain
``watch``, one restart), with frames back within seconds and never a
``failed`` sample. When no new path works either, the failed restart is
logged and the probe joins again once the session is dead, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator

import pytest

from probes.agent import ProbeAgent
from probes.config import ProbeConfig
from probes.ice_host_pin import pin_host_addresses
from probes.sinks import MemorySink
from qosmon.model import ConnectionState, ProbeSample
from tests.janus_harness import (
    H264_MOUNTPOINT,
    MOUNTPOINT,
    TEXTROOM,
    JanusApiProxy,
    JanusAuth,
    JanusNetns,
    encode_clip,
    encode_h264_clip,
    skip_unless_janus_possible,
)
from tests.veth_namespace import run

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.server]

API_SECRET = "restart-apisecret-93c1"
BREAK_AFTER_S = 6.0


@pytest.fixture(scope="module")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusNetns]:
    skip_unless_janus_possible()
    clips = tmp_path_factory.mktemp("clip")
    clip = encode_clip(clips / "clip.webm", seconds=4, bitrate_kbps=300, size="320x180")
    h264 = encode_h264_clip(clips / "clip.ts", seconds=4, bitrate_kbps=300, size="320x180")
    with JanusNetns(index=6, auth=JanusAuth(api_secret=API_SECRET)) as j:
        j.start_feed(clip)
        j.start_h264_feed(h264)
        # The break's rules: a set of the probe's ports, and chains in both
        # directions in Janus's namespace that drop UDP to and from them (or,
        # with ``all``, every UDP packet to and from the probe's address).
        j.netns("nft", "add", "set", "inet", "qp", "cut", "{ type inet_service; }")
        for chain, hook, port in (("cut_in", "input", "sport"), ("cut_out", "output", "dport")):
            j.netns("nft", "add", "chain", "inet", "qp", chain,
                    f"{{ type filter hook {hook} priority -10; policy accept; }}")
            j.netns("nft", "add", "rule", "inet", "qp", chain, "udp", port, "@cut", "drop")
        yield j


def _cut(janus: JanusNetns, ports: list[int]) -> None:
    janus.netns("nft", "add", "element", "inet", "qp", "cut",
                "{ " + ", ".join(map(str, ports)) + " }")


def _cut_everything(janus: JanusNetns, on: bool) -> None:
    for chain, way in (("cut_in", "saddr"), ("cut_out", "daddr")):
        if on:
            janus.netns("nft", "add", "rule", "inet", "qp", chain, "ip", way, janus.root_ip,
                        "meta", "l4proto", "udp", "drop")
        else:
            janus.netns("nft", "flush", "chain", "inet", "qp", chain)
            port = "sport" if chain == "cut_in" else "dport"
            janus.netns("nft", "add", "rule", "inet", "qp", chain, "udp", port, "@cut", "drop")


def _heal(janus: JanusNetns) -> None:
    janus.netns("nft", "flush", "set", "inet", "qp", "cut")
    _cut_everything(janus, False)


def _probe_ports(janus: JanusNetns) -> list[int]:
    """The UDP ports this process (the probe) has open on the veth's root end."""
    out = run("ss", "-u", "-a", "-n", "-p", "-H").stdout
    ports = set()
    for line in out.splitlines():
        fields = line.split()
        if f"pid={os.getpid()}," in line and fields[3].startswith(janus.root_ip + ":"):
            ports.add(int(fields[3].rsplit(":", 1)[1]))
    return sorted(ports)


def _config(janus: JanusNetns, url: str, monkeypatch: pytest.MonkeyPatch,
            mountpoint: int = MOUNTPOINT) -> ProbeConfig:
    monkeypatch.setenv("QOSMON_TEST_RESTART_APISECRET", API_SECRET)
    return ProbeConfig.model_validate({
        "labels": {"probe_id": "restart", "region": "lab"},
        "ice_host_addresses": [janus.root_ip],
        "streams": [{"show_id": "show", "stream_id": "mp1", "join": "janus", "url": url,
                     "mountpoint": mountpoint, "textroom_room": TEXTROOM, "chat": True,
                     "chat_interval_s": 0.5,
                     "apisecret_env": "QOSMON_TEST_RESTART_APISECRET"}],
    })


def _kinds(proxy: JanusApiProxy) -> list[str]:
    """The probe's requests to Janus that matter here, in order."""
    kinds = []
    for r in proxy.requests:
        body = r.get("body")
        if r.get("janus") == "create":
            kinds.append("create")
        elif isinstance(body, dict) and body.get("request") == "watch":
            kinds.append("watch restart" if body.get("restart") is True else "watch")
        elif isinstance(body, dict) and body.get("request") == "restart":
            kinds.append("textroom restart")
    return kinds


def _frames_back_after(samples: list[ProbeSample], broke: int) -> int:
    """Samples from the break on (one a second) until frames come again."""
    for i, s in enumerate(samples[broke:]):
        if i > 1 and s.state == ConnectionState.CONNECTED and (s.fps or 0) > 5:
            return i
    return len(samples) - broke


@contextlib.asynccontextmanager
async def _probe_through_proxy(
    janus: JanusNetns, monkeypatch: pytest.MonkeyPatch, mountpoint: int,
) -> AsyncIterator[tuple[JanusApiProxy, ProbeAgent, MemorySink]]:
    """A probe watching ``mountpoint`` through a request-recording proxy;
    stopped, the proxy closed and the path healed on the way out."""
    proxy = JanusApiProxy(janus.api_url)
    await proxy.start()
    sink = MemorySink()
    agent = ProbeAgent(_config(janus, proxy.url, monkeypatch, mountpoint), sink)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield proxy, agent, sink
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        pin_host_addresses(None)
        await proxy.stop()
        _heal(janus)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mountpoint", [MOUNTPOINT, H264_MOUNTPOINT], ids=["vp8", "h264-opus"])
async def test_janus_ice_restart_keeps_the_session_through_a_path_break(
    janus: JanusNetns, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    mountpoint: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _probe_through_proxy(janus, monkeypatch, mountpoint) as (proxy, agent, sink):
        await asyncio.sleep(BREAK_AFTER_S)
        ports = _probe_ports(janus)
        # The media's and the chat's PeerConnections: one socket each.
        assert len(ports) >= 2, run("ss", "-u", "-a", "-n", "-p").stdout
        broke = len(sink.samples)
        _cut(janus, ports)
        await asyncio.sleep(16.0)
    samples = sink.samples
    states = [(s.state.value, s.fps, s.error) for s in samples]
    kinds = _kinds(proxy)
    assert kinds == ["create", "watch", "watch restart", "textroom restart"], kinds
    assert agent.watchers[0].ice_restarts == 1
    assert re.search(r"ICE restarted after \d+\.\d s without media \(took \d+\.\d\d s\)",
                     caplog.text), caplog.text[-3000:]
    assert "chat ICE restarted" in caplog.text
    assert not any(s.state in (ConnectionState.FAILED, ConnectionState.JOIN_FAILED)
                   for s in samples), states
    # 3 s of silence before the restart, then gathering, the two requests
    # and the checks; Janus sends on the new path at once.
    gap = _frames_back_after(samples, broke)
    took = re.findall(r"ICE restarted after .*", caplog.text)
    print(f"frames back {gap} samples after the break; {took}")
    assert gap <= 8, (gap, states)
    tail = samples[-5:]
    assert all(s.state == ConnectionState.CONNECTED and (s.fps or 0) > 5 for s in tail), states
    if mountpoint == H264_MOUNTPOINT:
        # The audio, bundled on the video's transport, came back with it.
        assert all((s.audio_kbps or 0) > 10 and not s.audio_stalled for s in tail), \
            [(s.audio_kbps, s.audio_stalled) for s in tail]
    # The chat came back over its own restarted path.
    assert sum(s.chat_sent for s in tail) >= 5
    assert sum(s.chat_lost for s in tail) == 0, [(s.chat_sent, s.chat_lost) for s in tail]
    assert API_SECRET not in caplog.text
    # Every request of the restart carried the secret (Janus refuses one without).
    assert all(r.get("apisecret") == API_SECRET for r in proxy.requests)


@pytest.mark.timeout(120)
async def test_when_no_new_path_works_the_probe_joins_again(
    janus: JanusNetns, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every UDP packet between the probe and Janus dropped: the restart is
    tried once, fails (no pair answers), is logged, and the session is called
    dead after ``dead_after_s`` (10 s) and joined anew once the path is back."""
    caplog.set_level(logging.INFO)
    async with _probe_through_proxy(janus, monkeypatch, MOUNTPOINT) as (proxy, agent, sink):
        await asyncio.sleep(BREAK_AFTER_S)
        _cut_everything(janus, True)
        # Heal once the probe has given the session up (its second create).
        for _ in range(100):
            if _kinds(proxy).count("create") >= 2:
                break
            await asyncio.sleep(0.2)
        _heal(janus)
        await asyncio.sleep(8.0)
    samples = sink.samples
    states = [(s.state.value, s.fps, s.error) for s in samples]
    kinds = _kinds(proxy)
    assert kinds[:4] == ["create", "watch", "watch restart", "textroom restart"], kinds
    assert kinds[4:6] == ["create", "watch"], kinds
    assert agent.watchers[0].ice_restarts == 0
    assert re.search(r"ICE restart after \d+\.\d s without media failed: ICE restart: ",
                     caplog.text), caplog.text[-3000:]
    assert any(s.state == ConnectionState.FAILED and "no media packets" in (s.error or "")
               for s in samples), states
    assert samples[-1].state == ConnectionState.CONNECTED and (samples[-1].fps or 0) > 5, \
        states
    assert API_SECRET not in caplog.text
