"""The probe's join carries Janus's own auth: a signed ``token``
(``token_auth``) or the ``apisecret``, read from a file or an environment
variable. Real Janus in a namespace (see janus_harness): the right secret
joins and measures, a wrong or missing one is a ``join_failed`` sample with
Janus's 403 and reason, and the secret itself appears in no sample and no
log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.agent import ProbeAgent
from probes.config import ProbeConfig
from probes.ice_host_pin import pin_host_addresses
from probes.sinks import MemorySink
from qosmon.model import ConnectionState, ProbeSample
from tests.janus_harness import (
    MOUNTPOINT,
    JanusAuth,
    JanusNetns,
    encode_clip,
    signed_janus_token,
    skip_unless_janus_possible,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

TOKEN_SECRET = "hmac-secret-for-tests"
API_SECRET = "api-secret-4711"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    skip_unless_janus_possible()
    return encode_clip(tmp_path_factory.mktemp("clip") / "clip.webm", seconds=4,
                       bitrate_kbps=300, size="320x180")


@pytest.fixture(scope="module")
def token_janus(clip: Path) -> Iterator[JanusNetns]:
    with JanusNetns(index=3, auth=JanusAuth(token_auth_secret=TOKEN_SECRET)) as j:
        j.start_feed(clip)
        yield j


@pytest.fixture(scope="module")
def secret_janus(clip: Path) -> Iterator[JanusNetns]:
    with JanusNetns(index=4, auth=JanusAuth(api_secret=API_SECRET)) as j:
        j.start_feed(clip)
        yield j


def config(janus: JanusNetns, streams: list[dict[str, object]]) -> ProbeConfig:
    for s in streams:
        s.setdefault("url", janus.api_url)
        s.update(show_id="show", join="janus", mountpoint=MOUNTPOINT, chat=False)
    return ProbeConfig.model_validate({
        "labels": {"probe_id": "auth", "region": "lab"},
        "ice_host_addresses": [janus.root_ip],
        "join_timeout_s": 5,
        "streams": streams,
    })


async def run_for(cfg: ProbeConfig, seconds: float) -> dict[str, list[ProbeSample]]:
    sink = MemorySink()
    agent = ProbeAgent(cfg, sink)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.sleep(seconds)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        pin_host_addresses(None)  # the agent pinned the veth address process-wide
    out: dict[str, list[ProbeSample]] = {}
    for s in sink.samples:
        out.setdefault(s.stream_id, []).append(s)
    return out


def assert_watching(samples: list[ProbeSample]) -> None:
    steady = [s for s in samples if s.state == ConnectionState.CONNECTED and s.fps]
    assert len(steady) >= 2, [(s.state, s.error) for s in samples]
    assert all(s.error is None for s in steady)
    assert 20 <= (steady[-1].fps or 0) <= 30, steady[-1]


def assert_refused(samples: list[ProbeSample], secret: str) -> None:
    assert samples and all(s.state == ConnectionState.JOIN_FAILED for s in samples), \
        [(s.state, s.error) for s in samples]
    error = samples[-1].error or ""
    assert "403" in error and "Unauthorized" in error, error
    assert secret not in error


@pytest.mark.timeout(90)
async def test_signed_token_from_file_joins_and_wrong_token_is_refused(
    token_janus: JanusNetns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = signed_janus_token(TOKEN_SECRET, ["janus.plugin.streaming"])
    forged = signed_janus_token("not-the-secret", ["janus.plugin.streaming"])
    (tmp_path / "good").write_text(good + "\n")
    monkeypatch.setenv("QOSMON_TEST_FORGED", forged)
    caplog.set_level(logging.DEBUG)
    by = await run_for(config(token_janus, [
        {"stream_id": "good", "token_file": str(tmp_path / "good")},
        {"stream_id": "forged", "token_env": "QOSMON_TEST_FORGED"},
        {"stream_id": "none"},
        {"stream_id": "nopath", "token_file": str(tmp_path / "good"),
         "url": token_janus.api_url.replace("/janus", "/nope")},
    ]), 4.5)
    assert_watching(by["good"])
    assert_refused(by["forged"], forged)
    assert_refused(by["none"], good)
    nopath = by["nopath"][-1]
    assert nopath.state == ConnectionState.JOIN_FAILED
    assert (nopath.error or "").startswith("Janus create answered HTTP 404 Not Found"), nopath
    for secret in (good, forged):
        assert secret not in caplog.text
        assert all(secret not in s.model_dump_json() for v in by.values() for s in v)


@pytest.mark.timeout(90)
async def test_api_secret_from_env_joins_and_wrong_secret_is_refused(
    secret_janus: JanusNetns, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("QOSMON_TEST_APISECRET", API_SECRET)
    monkeypatch.setenv("QOSMON_TEST_WRONG", "guessed")
    caplog.set_level(logging.DEBUG)
    by = await run_for(config(secret_janus, [
        {"stream_id": "good", "apisecret_env": "QOSMON_TEST_APISECRET"},
        {"stream_id": "wrong", "apisecret_env": "QOSMON_TEST_WRONG"},
        {"stream_id": "unset", "apisecret_env": "QOSMON_TEST_UNSET"},
    ]), 4.5)
    assert_watching(by["good"])
    assert_refused(by["wrong"], "guessed")
    assert API_SECRET not in caplog.text and "guessed" not in caplog.text
    unset = by["unset"][-1]
    assert unset.state == ConnectionState.JOIN_FAILED
    assert "QOSMON_TEST_UNSET is not set" in (unset.error or "")
