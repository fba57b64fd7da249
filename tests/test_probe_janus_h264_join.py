"""Janus mountpoints that send H.264 in the variants live shows use (Main
profile 4d001f in packetization mode 1, with Opus audio; constrained
baseline in mode 0, one NAL unit per packet), fed by ffmpeg with libx264 and
libopus: the probe's join accepts what aiortc alone would refuse, hands the
audio receiver to the viewer, and measures the stream. Mountpoints are
created through Janus's own API (``create``), next to the harness's VP8 one."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCRtpReceiver

from probes.agent import ProbeAgent
from probes.config import ProbeConfig, StreamTarget
from probes.ice_host_pin import pin_host_addresses
from probes.joins.base import JoinError, JoinHooks
from probes.joins.janus import JanusJoiner
from probes.sinks import MemorySink
from probes.viewer import rtc_configuration
from qosmon.model import ConnectionState
from tests.janus_harness import JanusNetns, _stop, run, skip_unless_janus_possible

pytestmark = [pytest.mark.root, pytest.mark.slow]

# mountpoint id -> (fmtp, RTP port, ffmpeg x264 options, ffmpeg RTP flags)
MOUNTS: dict[int, tuple[str, int, list[str], list[str]]] = {
    21: ("profile-level-id=4d001f;packetization-mode=1", 5010,
         ["-profile:v", "main"], []),
    22: ("profile-level-id=42e01f;packetization-mode=0", 5012,
         ["-profile:v", "baseline", "-x264-params", "slice-max-size=1000"],
         ["-rtpflags", "h264_mode0"]),
}
PT = 96
AUDIO_MOUNT, AUDIO_PORT, AUDIO_PT = 21, 5020, 111


def encode(path: Path, x264: list[str]) -> Path:
    run("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
        "-i", "testsrc2=size=320x180:rate=25", "-t", "30", "-c:v", "libx264", *x264,
        "-preset", "veryfast",
        "-level", "3.1", "-tune", "zerolatency", "-g", "50", "-bf", "0", "-b:v", "300k",
        "-pix_fmt", "yuv420p", str(path))
    return path


async def janus_call(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, json={**body, "transaction": "t"}) as r:
        data = await r.json(content_type=None)
    assert data.get("janus") != "error", data
    return data


@pytest.fixture(scope="module")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusNetns]:
    skip_unless_janus_possible()
    tmp = tmp_path_factory.mktemp("h264")
    feeds: list[subprocess.Popen[bytes]] = []
    with JanusNetns(index=5) as j:

        async def create() -> None:
            async with aiohttp.ClientSession() as http:
                sid = (await janus_call(http, j.api_url, {"janus": "create"}))["data"]["id"]
                hid = (await janus_call(http, f"{j.api_url}/{sid}", {
                    "janus": "attach", "plugin": "janus.plugin.streaming"}))["data"]["id"]
                for mp, (fmtp, port, _, _) in MOUNTS.items():
                    made = await janus_call(http, f"{j.api_url}/{sid}/{hid}", {
                        "janus": "message", "body": {
                            "request": "create", "type": "rtp", "id": mp, "audio": False,
                            "video": True, "videoport": port, "videopt": PT,
                            "videocodec": "h264", "videofmtp": fmtp, "videobufferkf": True,
                            **({"audio": True, "audioport": AUDIO_PORT, "audiopt": AUDIO_PT,
                                "audiortpmap": "opus/48000/2"} if mp == AUDIO_MOUNT else {})}})
                    assert "error" not in made["plugindata"]["data"], made
                await janus_call(http, f"{j.api_url}/{sid}", {"janus": "destroy"})

        asyncio.run(create())
        for mp, (_, port, x264, flags) in MOUNTS.items():
            clip = encode(tmp / f"mp{mp}.mkv", x264)
            # h264_mp4toannexb puts SPS/PPS in-band before each IDR, in Annex B
            # form. (dump_extra would prepend the file's avcC record, which the
            # RTP muxer splits into bogus NAL units: no keyframe arrives whole.)
            feeds.append(subprocess.Popen(
                ["ip", "netns", "exec", j.ns, "ffmpeg", "-nostdin", "-loglevel", "error",
                 "-re", "-stream_loop", "-1", "-i", str(clip), "-an", "-c:v", "copy",
                 "-bsf:v", "h264_mp4toannexb", "-f", "rtp", "-payload_type", str(PT), *flags,
                 f"rtp://127.0.0.1:{port}?pkt_size=1200"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        feeds.append(subprocess.Popen(
            ["ip", "netns", "exec", j.ns, "ffmpeg", "-nostdin", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "libopus",
             "-b:a", "32k", "-f", "rtp", "-payload_type", str(AUDIO_PT),
             f"rtp://127.0.0.1:{AUDIO_PORT}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        try:
            yield j
        finally:
            for f in feeds:
                _stop(f)


def config(janus: JanusNetns, **stream: Any) -> ProbeConfig:
    streams = [{"show_id": "show", "stream_id": f"mp{mp}", "join": "janus",
                "url": janus.api_url, "mountpoint": mp, "chat": False, **stream}
               for mp in MOUNTS]
    return ProbeConfig.model_validate({"labels": {"probe_id": "h264", "region": "lab"},
                                       "ice_host_addresses": [janus.root_ip],
                                       "join_timeout_s": 5, "streams": streams})


@pytest.mark.timeout(90)
async def test_janus_h264_variants_are_negotiated(janus: JanusNetns) -> None:
    cfg = config(janus)
    pin_host_addresses(cfg.ice_host_addresses)
    try:
        async with aiohttp.ClientSession() as http:
            for mp, (fmtp, _, _, _) in MOUNTS.items():
                receivers: list[RTCRtpReceiver] = []
                audio: list[RTCRtpReceiver] = []
                hooks = JoinHooks(rtc_config=rtc_configuration(cfg),
                                  on_receiver=receivers.append, on_chat_text=lambda t: None,
                                  on_audio_receiver=audio.append)
                target = StreamTarget.model_validate(
                    {"show_id": "s", "stream_id": "x", "join": "janus", "url": janus.api_url,
                     "mountpoint": mp, "chat": False})
                joined = await JanusJoiner().join(target, http, hooks)
                try:
                    video = next(t for t in joined.pc.getTransceivers() if t.kind == "video")
                    codec = video._codecs[0]
                    want = dict(kv.split("=") for kv in fmtp.split(";"))
                    assert codec.name == "H264"
                    assert str(codec.parameters["profile-level-id"]) == want["profile-level-id"]
                    assert str(codec.parameters["packetization-mode"]) == \
                        want["packetization-mode"]
                    assert receivers == [video.receiver]
                    sound = [t for t in joined.pc.getTransceivers() if t.kind == "audio"]
                    if mp == AUDIO_MOUNT:
                        assert [t.receiver for t in sound] == audio
                        assert sound[0]._codecs[0].mimeType.lower() == "audio/opus"
                    else:
                        assert not sound and not audio
                finally:
                    await joined.close()
                if mp == AUDIO_MOUNT:
                    audio.clear()
                    mute = target.model_copy(update={"audio": False})
                    joined = await JanusJoiner().join(mute, http, hooks)
                    try:
                        sound = [t for t in joined.pc.getTransceivers() if t.kind == "audio"]
                        assert not audio and sound[0].direction == "inactive"
                        assert "a=inactive" in joined.pc.localDescription.sdp
                    finally:
                        await joined.close()
                vp8_only = target.model_copy(update={"video_codecs": ["vp8"]})
                with pytest.raises(JoinError, match="no video codec in video_codecs"):
                    await JanusJoiner().join(vp8_only, http, hooks)
    finally:
        pin_host_addresses(None)


@pytest.mark.timeout(90)
async def test_probe_measures_janus_h264_variants(janus: JanusNetns) -> None:
    sink = MemorySink()
    agent = ProbeAgent(config(janus), sink)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.sleep(6)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
        pin_host_addresses(None)  # the agent pinned the veth address process-wide
    for mp in MOUNTS:
        got = [s for s in sink.samples if s.stream_id == f"mp{mp}"]
        steady = [s for s in got if s.state == ConnectionState.CONNECTED][2:]
        assert steady, [(s.state, s.error) for s in got]
        assert all(s.packets_received > 0 and s.loss_pct == 0.0 for s in steady), steady
        assert max(s.fps or 0 for s in steady) >= 15, steady
