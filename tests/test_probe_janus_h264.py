"""End to end on the stream live shows mostly send: H.264 (libx264
baseline, packetization mode 1) + Opus from a real Janus mountpoint fed by
ffmpeg (encoded once, looped with -c copy), joined by the probe's Janus join
in a network namespace. Ground truth from outside the probe: the clip's
size and rate, nftables drop counters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.agent import ProbeAgent
from probes.config import ProbeConfig
from qosmon.model import ConnectionState
from tests.janus_harness import (
    H264_MOUNTPOINT,
    JanusNetns,
    encode_h264_clip,
    skip_unless_janus_possible,
)
from tests.test_probe_janus import CountingSink, Running, run_under_loss, run_under_squeeze

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    skip_unless_janus_possible()
    return encode_h264_clip(tmp_path_factory.mktemp("clip") / "clip.ts")


@pytest.fixture(scope="module")
def janus(clip: Path) -> Iterator[JanusNetns]:
    with JanusNetns(index=2) as j:
        j.start_h264_feed(clip)
        time.sleep(2.5)  # a whole GOP (2 s): Janus holds a keyframe before the first join
        yield j


def config(janus: JanusNetns, **extra: object) -> ProbeConfig:
    return ProbeConfig.model_validate({
        **extra,
        "labels": {"probe_id": "e2e", "region": "lab"},
        "ice_host_addresses": [janus.root_ip],
        "streams": [{"show_id": "show", "stream_id": "h264", "join": "janus",
                     "url": janus.api_url, "mountpoint": H264_MOUNTPOINT, "chat": False}],
    })


@pytest.mark.timeout(60)
async def test_h264_frames_size_and_rate(janus: JanusNetns) -> None:
    sink = CountingSink(janus)
    async with Running(ProbeAgent(config(janus), sink)) as run:
        await asyncio.sleep(7.2)
        joined = run.agent.watchers[0]._joined
        assert joined is not None
        audio = [t for t in joined.pc.getTransceivers() if t.kind == "audio"]
        # The mountpoint's Opus reaches the probe; whether tapped or not, no
        # decoded audio piles up (aiortc's frame queue has no bound).
        assert audio and audio[0].receiver.track is not None
        assert audio[0].receiver.track._queue.qsize() < 25
    steady = [s for s in sink.samples[2:] if s.state == ConnectionState.CONNECTED]
    assert len(steady) >= 4, [(s.state, s.error) for s in sink.samples]
    for s in steady:
        assert s.video_codec == "H264"
        assert (s.width, s.height) == (640, 360)
        assert s.fps is not None and 22.5 <= s.fps <= 27.5, s
        assert s.loss_pct == 0.0 and s.freeze_count == 0 and s.stuck_ms == 0.0
        assert s.goodput_kbps is not None and s.goodput_kbps > 300
    # Janus hands out its buffered keyframe: no wait for the next one (the
    # GOP is 2 s). Signalling and ICE took up to 1.1 s in some runs here,
    # 1.54 s once in the full suite on the loaded machine.
    assert steady[-1].ttff_ms is not None and steady[-1].ttff_ms < 2000


@pytest.mark.timeout(60)
async def test_h264_path_loss_matches_nft_drops(janus: JanusNetns) -> None:
    got = await run_under_loss(janus, config(janus), 5, 11.0)
    assert abs(got.measured_pct - got.truth_pct) < 1.0, (got.measured_pct, got.truth_pct)
    # What arrived includes any retransmissions. How many Janus 1.1.2 sends
    # varies from run to run (at times none for seconds; its debug log shows
    # NACKs for packets it no longer holds), so repair is not asserted
    # here; the probe's NACKs and PLIs are tested against an aiortc sender
    # with deterministic drops in test_probe_receive.
    assert all((s.received_kbps or 0) >= (s.bitrate_kbps or 0) for s in got.lossy)
    assert all(s.video_codec == "H264" for s in got.lossy)


@pytest.mark.timeout(60)
async def test_squeeze_is_a_freeze_seen_while_it_lasts(janus: JanusNetns) -> None:
    samples, before = await run_under_squeeze(janus, config(janus), 250)  # clip: 800 kbit/s
    squeezed = samples[before:]
    # Packets keep coming through the queue: the browser calls the stall a
    # freeze, never a pause, and the samples show it while it lasts.
    assert sum(s.pause_count for s in squeezed) == 0
    assert all(s.packets_received > 0 for s in squeezed[1:])
    stuck = [s.stuck_ms for s in squeezed]
    assert sum(stuck) > 2000, stuck
    assert max(stuck) <= 1000 + 400, stuck  # at most a threshold's backlog over a second
    frozen = sum(s.freeze_ms + s.pause_ms for s in samples)
    assert sum(s.stuck_ms for s in samples) >= frozen  # ended stalls all counted
    # What the link carried includes retransmissions
    assert sum(s.received_kbps or 0 for s in squeezed) >= sum(s.bitrate_kbps or 0
                                                               for s in squeezed)


@pytest.mark.timeout(60)
async def test_stopped_stream_is_a_pause(janus: JanusNetns) -> None:
    # Everything Janus sends is dropped for 6.5 s: to the viewer the stream
    # stopped (no packet at all), which the browser files as a pause.
    sink = CountingSink(janus)
    try:
        async with Running(ProbeAgent(config(janus, dead_after_s=30), sink)):
            await asyncio.sleep(3.2)
            janus.netns("nft", "add", "rule", "inet", "qp", "impair", "counter", "name",
                        "dropped", "drop")
            await asyncio.sleep(6.5)
            janus.set_loss(0)
            await asyncio.sleep(4.0)  # the next keyframe comes within a GOP (2 s)
    finally:
        janus.set_loss(0)
    samples = sink.samples
    assert all(s.state == ConnectionState.CONNECTED for s in samples[1:]), [
        (s.state, s.error) for s in samples]
    assert sum(s.pause_count for s in samples) == 1
    assert sum(s.freeze_count for s in samples) == 0
    pause = sum(s.pause_ms for s in samples)
    assert pause >= 6000, pause
    during = [s for s in samples if s.stuck_ms > 0 and s.pause_count == 0]
    assert len(during) >= 4  # seen second by second before it ended
    assert abs(sum(s.stuck_ms for s in samples) - pause) < 1.0
    assert samples[-1].fps is not None and samples[-1].fps > 20
