"""End to end: the probe joins a real Janus (Debian package) over WebRTC.

Janus runs in a network namespace made here, fed by ffmpeg looping a VP8
clip; the probe is in the root namespace, on the other end of a veth (never
loopback: Janus does not do ICE there). Ground truth comes from outside the
probe: nftables counters in Janus's namespace (packets sent, dropped, feed
bytes), a UDP relay that adds an exact delay, tc tbf for a squeeze.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from probes.agent import ProbeAgent
from probes.config import ProbeConfig
from qosmon.model import ConnectionState, ProbeSample
from tests.janus_harness import (
    MOUNTPOINT,
    TEXTROOM,
    DelayRelay,
    JanusApiProxy,
    JanusNetns,
    NftCounters,
    encode_clip,
    skip_unless_janus_possible,
)

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.server]

CLIP_KBPS = 800


@pytest.fixture(scope="module")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusNetns]:
    skip_unless_janus_possible()
    clip = encode_clip(tmp_path_factory.mktemp("clip") / "clip.webm", bitrate_kbps=CLIP_KBPS)
    with JanusNetns() as j:
        j.start_feed(clip)
        yield j


class CountingSink:
    """Keeps each sample with the nft counters read at the same instant."""

    def __init__(self, janus: JanusNetns) -> None:
        self.janus = janus
        self.rows: list[tuple[ProbeSample, NftCounters]] = []

    async def put(self, sample: ProbeSample) -> None:
        self.rows.append((sample, self.janus.counters()))

    async def aclose(self) -> None:
        return None

    @property
    def samples(self) -> list[ProbeSample]:
        return [s for s, _ in self.rows]


def probe_config(janus: JanusNetns, url: str | None = None, chat: bool = False,
                 **extra: object) -> ProbeConfig:
    return ProbeConfig.model_validate({
        "labels": {"probe_id": "e2e", "region": "lab"},
        "ice_host_addresses": [janus.root_ip],
        "streams": [{"show_id": "show", "stream_id": "mp1", "join": "janus",
                     "url": url or janus.api_url, "mountpoint": MOUNTPOINT,
                     "textroom_room": TEXTROOM, "chat": chat, "chat_interval_s": 0.5}],
        **extra,
    })


class Running:
    def __init__(self, agent: ProbeAgent) -> None:
        self.agent = agent
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.agent.run(self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 15)

    def media_ssrc(self) -> int:
        meter = self.agent.watchers[0].meter
        assert meter is not None and meter.media_ssrcs, "no media received"
        return meter.media_ssrcs[0]


def window(rows: list[tuple[ProbeSample, NftCounters]], i: int, j: int
           ) -> tuple[list[ProbeSample], NftCounters, NftCounters]:
    """Samples i+1..j and the counters at samples i and j: the same interval."""
    return [s for s, _ in rows[i + 1 : j + 1]], rows[i][1], rows[j][1]


async def run_under_squeeze(janus: JanusNetns, cfg: ProbeConfig, kbit: int
                            ) -> tuple[list[ProbeSample], int]:
    """A probe joined for 4.2 s, then 7 s with Janus's link squeezed to
    ``kbit``: every sample, and the index of the first squeezed one."""
    sink = CountingSink(janus)
    try:
        async with Running(ProbeAgent(cfg, sink)):
            await asyncio.sleep(4.2)
            before = len(sink.rows)
            janus.set_rate(kbit)
            await asyncio.sleep(7.0)
    finally:
        janus.set_rate(None)
    return sink.samples, before


@dataclass
class LossRun:
    samples: list[ProbeSample]  # the measured window
    measured_pct: float  # the loss the probe reported over it
    truth_pct: float  # the media SSRC's drops nftables counted over it
    lossy: list[ProbeSample]  # every sample from the moment the loss was set


async def run_under_loss(janus: JanusNetns, cfg: ProbeConfig, percent: int,
                         measure_s: float) -> LossRun:
    """A probe joined for 2.5 s, then ``percent`` % loss on its media SSRC:
    after a second to settle, ``measure_s`` seconds measured."""
    sink = CountingSink(janus)
    try:
        async with Running(ProbeAgent(cfg, sink)) as run:
            await asyncio.sleep(2.5)
            start = len(sink.rows)
            janus.set_loss(percent, media_ssrc=run.media_ssrc())
            await asyncio.sleep(1.0)
            i = len(sink.rows) - 1
            await asyncio.sleep(measure_s)
            j = len(sink.rows) - 1
    finally:
        janus.set_loss(0)
    samples, c0, c1 = window(sink.rows, i, j)
    expected = sum(s.packets_expected for s in samples)
    lost = sum(round((s.loss_pct or 0) * s.packets_expected / 100) for s in samples)
    truth = 100 * (c1.media_dropped - c0.media_dropped) / (c1.media_out - c0.media_out)
    return LossRun(samples, 100 * lost / expected, truth, sink.samples[start:])


@pytest.mark.timeout(60)
async def test_clean_path_bitrate_fps_chat(janus: JanusNetns) -> None:
    sink = CountingSink(janus)
    async with Running(ProbeAgent(probe_config(janus, chat=True), sink)):
        await asyncio.sleep(8.2)
    rows = sink.rows
    steady = [s for s in sink.samples[2:] if s.state == ConnectionState.CONNECTED]
    assert len(steady) >= 5, [(s.state, s.error) for s in sink.samples]
    last = steady[-1]
    # Janus hands a new viewer its buffered keyframe: the first frame does not
    # wait for the clip's next one (2 s apart). Joins take either ~35 ms or
    # ~1.04 s (12 joins: 5 and 7), the second cluster one retransmission
    # timer later (not yet traced); up to 1.94 s in the loaded full suite.
    assert last.ttff_ms is not None and last.ttff_ms < 2500
    assert (last.width, last.height) == (640, 360)
    for s in steady:
        assert s.fps is not None and 22 <= s.fps <= 28, s
        assert s.loss_pct == 0.0 and s.freeze_count == 0
        assert s.rtt_ms is not None and s.rtt_ms < 5
    # Bitrate: the probe's payload bytes against the feed's, over the same
    # instants (the counters were read as each sample was emitted).
    samples, c0, c1 = window(rows, 2, len(rows) - 1)
    probe_bytes = sum((s.bitrate_kbps or 0) * 1000 / 8 * 1.0 for s in samples)
    sent_bytes = c1.feed_payload_bytes - c0.feed_payload_bytes
    assert abs(probe_bytes - sent_bytes) / sent_bytes < 0.05, (probe_bytes, sent_bytes)
    # Chat over Janus TextRoom: every message seen back, quickly.
    assert sum(s.chat_sent for s in sink.samples) >= 10
    assert sum(s.chat_lost for s in sink.samples) == 0
    rtts = [s.chat_rtt_ms for s in steady if s.chat_rtt_ms is not None]
    assert rtts and max(rtts) < 100


@pytest.mark.timeout(60)
@pytest.mark.parametrize("percent", [5, 15])
async def test_path_loss_matches_nft_drops(janus: JanusNetns, percent: int) -> None:
    got = await run_under_loss(janus, probe_config(janus), percent, 8.0)
    assert abs(got.measured_pct - got.truth_pct) <= 1.0, (got.measured_pct, got.truth_pct)
    assert abs(got.truth_pct - percent) < 6  # the impairment did what it says
    assert all(s.state == ConnectionState.CONNECTED for s in got.samples)


@pytest.mark.timeout(60)
async def test_rtt_with_known_added_delay(janus: JanusNetns) -> None:
    one_way_ms = 40.0
    relay = DelayRelay(janus.root_ip, one_way_ms)
    await relay.start()
    proxy = JanusApiProxy(janus.api_url, relay)
    await proxy.start()
    base = CountingSink(janus)
    sink = CountingSink(janus)
    try:
        async with Running(ProbeAgent(probe_config(janus), base)):
            await asyncio.sleep(3.2)
        async with Running(ProbeAgent(probe_config(janus, url=proxy.url), sink)):
            await asyncio.sleep(6.2)
    finally:
        await proxy.stop()
        relay.close()
    base_rtt = statistics.median(s.rtt_ms for s in base.samples if s.rtt_ms is not None)
    rtts = [s.rtt_ms for s in sink.samples[2:] if s.rtt_ms is not None]
    assert len(rtts) >= 3, [(s.state, s.error, s.rtt_ms) for s in sink.samples]
    expected = 2 * one_way_ms + base_rtt
    got = statistics.median(rtts)
    assert abs(got - expected) <= max(5.0, 0.1 * expected), (got, expected)
    assert all((s.fps or 0) > 20 for s in sink.samples[2:])  # media flows through it


@pytest.mark.timeout(60)
async def test_bandwidth_squeeze_shows_freezes_and_lower_bitrate(janus: JanusNetns) -> None:
    samples, before = await run_under_squeeze(janus, probe_config(janus), 250)
    normal = samples[1:before]
    squeezed = samples[before:]
    kbps_before = statistics.mean(s.bitrate_kbps or 0 for s in normal)
    kbps_during = statistics.mean(s.bitrate_kbps or 0 for s in squeezed)
    assert kbps_during < 0.5 * kbps_before, (kbps_before, kbps_during)
    stalls = sum(s.freeze_count + s.pause_count for s in squeezed)
    longest_gap = max(s.no_frame_ms or 0 for s in squeezed)
    assert stalls >= 1 or longest_gap > 1000, [(s.fps, s.no_frame_ms) for s in squeezed]
    assert statistics.mean(s.fps or 0 for s in squeezed) < 15
    queued = [s.rtt_ms for s in squeezed if s.rtt_ms is not None]
    assert not queued or max(queued) > 50  # the tbf queue shows in RTT


@pytest.mark.timeout(60)
async def test_dead_stream_is_reported_while_it_lasts_then_failed(
    janus: JanusNetns, tmp_path: Path
) -> None:
    sink = CountingSink(janus)
    clip = encode_clip(tmp_path / "clip.webm", seconds=4, bitrate_kbps=CLIP_KBPS)
    try:
        async with Running(ProbeAgent(probe_config(janus, dead_after_s=3), sink)):
            await asyncio.sleep(2.2)
            janus.stop_feed()
            await asyncio.sleep(5.0)
    finally:
        janus.start_feed(clip)
    after = sink.samples[2:]
    growing = [s.no_frame_ms for s in after if s.state == ConnectionState.CONNECTED]
    assert any(g is not None and g > 1500 for g in growing), growing
    failed = [s for s in after if s.state == ConnectionState.FAILED]
    assert failed and "no media packets" in (failed[0].error or "")
