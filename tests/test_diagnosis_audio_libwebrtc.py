"""The host cannot be heard, end to end: a libwebrtc sender (headless
Chromium behind a Bearer WHEP endpoint, tests/libwebrtc_origin.py) stops
sending its audio to every viewer while the picture goes on, and the
collector's live diagnosis names it ``audio_stalled`` at the source (every
region at once: not the network), with the evidence, and nothing else.

Two probes (``qosmon probe --config``, each its own process) in two regions
watch it over loopback and push to a real ``qosmon serve``; the incidents
asked of its API are what its live pipeline diagnosed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qosmon.model import Show
from tests.chromium import chromium_path
from tests.libwebrtc_origin import LibwebrtcOrigin
from tests.serve_process import CollectorProcess, live_collector_config

pytestmark = [pytest.mark.slow, pytest.mark.server]

REPO = Path(__file__).resolve().parent.parent
WHEP_TOKEN = "audio-test-whep-token"
SHOW = "audio-e2e"
WARMUP_S = 25.0
MUTE_S = 30.0
# Every audio sender of the page stops sending (no RTP at all), or sends the
# tone again (the origin page's setAudio).
STOP_AUDIO = "setAudio(false)"
RESUME_AUDIO = "setAudio(true)"


async def _incidents(http: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with http.get(f"{url}/api/v1/shows/{SHOW}/incidents") as r:
        assert r.status == 200, await r.text()
        got: list[dict[str, Any]] = (await r.json())["incidents"]
        return got


@pytest.mark.timeout(240)
async def test_audio_stopped_at_the_source_is_audio_stalled_everywhere(tmp_path: Path) -> None:
    if chromium_path() is None:
        pytest.skip("needs Debian's chromium (make sysdeps installs it)")
    probes = {"a-1": "A", "b-1": "B"}
    tokens = {p: secrets.token_urlsafe(24) for p in probes}
    feed = secrets.token_urlsafe(24)
    cfg = live_collector_config(tmp_path, tokens, feed)
    collector = CollectorProcess(cfg)
    procs: list[asyncio.subprocess.Process] = []
    files = contextlib.ExitStack()
    try:
        async with LibwebrtcOrigin(WHEP_TOKEN) as origin, \
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            start = time.time()
            show = Show(show_id=SHOW, title="audio", start_ts=start,
                        planned_end_ts=start + 600, regions=sorted(set(probes.values())))
            async with http.put(f"{collector.url}/api/v1/shows/{SHOW}",
                                json=show.model_dump(mode="json"),
                                headers={"Authorization": f"Bearer {feed}"}) as r:
                assert r.status == 200, await r.text()
            env = {**os.environ, "PYTHONPATH": str(REPO), "QOSMON_WHEP_TOKEN": WHEP_TOKEN}
            for probe_id, region in probes.items():
                conf = tmp_path / f"{probe_id}.toml"
                conf.write_text(
                    f'collector_url = "{collector.url}"\ntoken = "{tokens[probe_id]}"\n'
                    'assignment = false\nice_host_addresses = ["127.0.0.1"]\n'
                    f'[labels]\nprobe_id = "{probe_id}"\nregion = "{region}"\n'
                    f'[[streams]]\nshow_id = "{SHOW}"\nstream_id = "main"\njoin = "whep"\n'
                    f'url = "{origin.url("h264")}"\ntoken_env = "QOSMON_WHEP_TOKEN"\n'
                )
                procs.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "qosmon.cli", "probe", "--config", str(conf),
                    cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL,
                    stderr=files.enter_context((tmp_path / f"{probe_id}.log").open("w")),
                    start_new_session=True))
            await asyncio.sleep(WARMUP_S)
            before = await _incidents(http, collector.url)
            assert await origin.evaluate(STOP_AUDIO) == len(probes)
            muted_ts = time.time()
            found: list[dict[str, Any]] = []
            deadline = time.monotonic() + MUTE_S
            while time.monotonic() < deadline and not found:
                await asyncio.sleep(2)
                found = [i for i in await _incidents(http, collector.url)
                         if i["cause"] == "audio_stalled"]
            detected_s = time.time() - muted_ts
            after = await _incidents(http, collector.url)
            await origin.evaluate(RESUME_AUDIO)
    finally:
        for p in procs:
            if p.returncode is None:
                p.terminate()
        for p in procs:
            await asyncio.wait_for(p.wait(), 20)
        files.close()
        collector.stop()
    logs = "".join((tmp_path / f"{p}.log").read_text()[-800:] for p in probes)
    assert before == [], json.dumps(before, indent=1)[:4000]
    assert found, (after, logs)
    (inc,) = found
    assert inc["scope"] == {} and set(inc["probes"]) == set(probes), inc
    assert inc["start_ts"] >= muted_ts - 3, (inc, muted_ts)
    assert inc["evidence"][0]["metric"] == "audio_stalled_ms", inc["evidence"]
    assert inc["evidence"][0]["observed"] >= inc["evidence"][0]["threshold"], inc["evidence"]
    assert "at the source" in inc["summary"] and "not the network" in inc["summary"], inc
    # The picture went on: no other incident.
    assert [i for i in after if i["incident_id"] != inc["incident_id"]] == [], after
    print(f"audio_stalled found {detected_s:.1f} s after the audio stopped; {inc['summary']}")
