"""The probe against a libwebrtc sender: headless Chromium publishing a
canvas picture and a tone behind a WHEP endpoint that wants a Bearer token
(tests/libwebrtc_origin.py). ``qosmon probe --whep`` runs as a user runs it,
a separate process; what it reports is checked against what the sending
browser says it sent (its outbound-rtp stats)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.chromium import chromium_path
from tests.libwebrtc_origin import LibwebrtcOrigin

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TOKEN = "whep-test-token-9f2c"
REPO = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def origin() -> AsyncIterator[LibwebrtcOrigin]:
    if chromium_path() is None:
        pytest.skip("needs Debian's chromium (make sysdeps installs it)")
    async with LibwebrtcOrigin(TOKEN) as o:
        yield o


async def probe_cli(url: str, seconds: float, tmp_path: Path, *extra: str,
                    token: str | None = TOKEN) -> tuple[list[dict[str, Any]], str]:
    """Run ``qosmon probe --whep URL`` for ``seconds``: its samples and log."""
    out = tmp_path / f"samples-{len(list(tmp_path.iterdir()))}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    auth: tuple[str, ...] = ()
    if token is not None:
        env["QOSMON_WHEP_TOKEN"] = token
        auth = ("--token-env", "QOSMON_WHEP_TOKEN")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qosmon.cli", "probe", "--whep", url, *auth,
        "--ice-host", "127.0.0.1",
        "--duration", str(seconds), "--output", str(out), *extra,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    log, _ = await asyncio.wait_for(proc.communicate(), seconds + 30)
    assert proc.returncode == 0, log.decode()
    samples = [json.loads(line) for line in out.read_text().splitlines()]
    return samples, log.decode(errors="replace")


@pytest.mark.timeout(90)
async def test_probe_joins_h264_and_opus_with_token(origin: LibwebrtcOrigin,
                                                    tmp_path: Path) -> None:
    before = set(origin.answered)
    samples, log = await probe_cli(origin.url("h264"), 8, tmp_path)
    steady = [s for s in samples if s["state"] == "connected" and s["fps"]][2:]
    assert len(steady) >= 3, [(s["state"], s["error"]) for s in samples]
    # A canvas captured at 25 fps on a busy 2-core machine: Chromium adapts
    # the frame rate, so the check is against what it says it encoded.
    for s in steady:
        assert s["fps"] >= 5 and s["bitrate_kbps"] > 50 and s["loss_pct"] == 0.0, s
    assert TOKEN not in log and all(TOKEN not in json.dumps(s) for s in samples)
    new = set(origin.answered) - before
    assert len(new) == 1 and new <= set(origin.deleted), "the probe leaves with DELETE"


@pytest.mark.timeout(90)
async def test_sender_codec_follows_the_endpoint(origin: LibwebrtcOrigin) -> None:
    """The probe's offer carries VP8, H.264 in both modes and three profiles,
    and Opus: whichever the endpoint picks, it is sent and counted."""
    from probes.agent import ProbeAgent
    from probes.config import ProbeConfig
    from probes.ice_host_pin import pin_host_addresses
    from probes.sinks import MemorySink

    cases = {"vp8": origin.url("vp8"),
             "h264-main-mode0": origin.url("h264", profile="4d001f", mode="0"),
             "h264-baseline": origin.url("h264", profile="42001f")}
    os.environ["QOSMON_TEST_WHEP_TOKEN"] = TOKEN
    cfg = ProbeConfig.model_validate({
        "labels": {"probe_id": "lw", "region": "lab"},
        "ice_host_addresses": ["127.0.0.1"],
        "streams": [{"show_id": "s", "stream_id": k, "join": "whep", "url": u,
                     "token_env": "QOSMON_TEST_WHEP_TOKEN"} for k, u in cases.items()],
    })
    sink = MemorySink()
    stop = asyncio.Event()
    task = asyncio.create_task(ProbeAgent(cfg, sink).run(stop))
    try:
        await asyncio.sleep(6)
        sent = await origin.sender_stats()
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        pin_host_addresses(None)  # the agent pinned loopback process-wide
    video = {s.get("sdpFmtpLine") or s["mimeType"]: s for s in sent if s["kind"] == "video"}
    assert any(s["mimeType"] == "video/VP8" for s in video.values()), video
    assert any("profile-level-id=4d001f" in k and "packetization-mode=0" in k
               for k in video), video
    assert any("profile-level-id=42001f" in k and "packetization-mode=1" in k
               for k in video), video
    assert sum(s["kind"] == "audio" and s["mimeType"] == "audio/opus" for s in sent) == 3
    for key in cases:
        got = [s for s in sink.samples if s.stream_id == key and s.state == "connected"]
        assert got and sum(s.packets_received for s in got) > 100, (key, got[-1:])
        assert max(s.fps or 0 for s in got) >= 5, (key, got[-1:])


@pytest.mark.timeout(90)
async def test_sender_rate_follows_the_probes_transport_feedback(
        origin: LibwebrtcOrigin) -> None:
    """The probe offers transport-cc as a browser does, so the sender runs its
    own congestion control on the probe's arrival reports: they must parse
    and say the path is clear, or its rate stays low. (Reports that did not
    parse left the encoder at 40-90 kbit/s; REMB alone, the probe before it
    sent them, at about 300 after 8 s; with them it was 700-800, the rate a
    browser viewer is sent.)"""
    from probes.agent import ProbeAgent
    from probes.config import ProbeConfig
    from probes.ice_host_pin import pin_host_addresses
    from probes.sinks import MemorySink

    before = {s["id"] for s in await origin.sender_stats()}
    os.environ["QOSMON_TEST_WHEP_TOKEN"] = TOKEN
    cfg = ProbeConfig.model_validate({
        "labels": {"probe_id": "lw", "region": "lab"},
        "ice_host_addresses": ["127.0.0.1"],
        "streams": [{"show_id": "s", "stream_id": "bwe", "join": "whep",
                     "url": origin.url("h264", max_kbps="1500"),
                     "token_env": "QOSMON_TEST_WHEP_TOKEN"}],
    })
    sink = MemorySink()
    stop = asyncio.Event()
    task = asyncio.create_task(ProbeAgent(cfg, sink).run(stop))
    try:
        await asyncio.sleep(8)
        sent = [s for s in await origin.sender_stats()
                if s["id"] not in before and s["kind"] == "video"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        pin_host_addresses(None)
    assert len(sent) == 1, sent
    assert sent[0]["targetBitrate"] >= 400_000, sent
    got = [s for s in sink.samples if s.state == "connected" and s.received_kbps]
    assert got and max(s.received_kbps or 0 for s in got[-4:]) > 300, got[-4:]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("path", "token", "status"), [
    ("h264", "not-the-token", "403 Forbidden"),
    ("h264", None, "401 Unauthorized"),  # no token configured at all
    ("av1", TOKEN, "404 Not Found"),
])
async def test_refused_join_is_a_sample_with_status(origin: LibwebrtcOrigin, tmp_path: Path,
                                                    path: str, token: str | None,
                                                    status: str) -> None:
    samples, log = await probe_cli(origin.url(path), 2.5, tmp_path, token=token)
    # The first second may end while the offer is still being made (a cold
    # process): "connecting" then; never connected, and the refusal is said.
    states = [s["state"] for s in samples]
    assert "join_failed" in states and set(states) <= {"new", "connecting", "join_failed"}, states
    assert f"WHEP POST answered {status}" in samples[-1]["error"], samples[-1]
    if token is not None:
        assert token not in log and all(token not in json.dumps(s) for s in samples)


@pytest.mark.timeout(30)
async def test_unset_token_variable_is_a_usage_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("QOSMON_NO_SUCH_VAR", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qosmon.cli", "probe", "--whep", "http://127.0.0.1:9/whep",
        "--token-env", "QOSMON_NO_SUCH_VAR", "--duration", "1", "--output", "-",
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and not out
    assert "environment variable QOSMON_NO_SUCH_VAR is not set" in err.decode()
