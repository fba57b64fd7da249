"""Central assignment: the pure matching of show streams to probes, the
collector's endpoint over real HTTP (real SQLite store), and the probe's
side (config, credentials by name, which watchers run)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from probes.agent import ProbeAgent
from probes.assignment import target_for
from probes.config import ProbeConfig
from probes.joins.credentials import CredentialError
from probes.sinks import MemorySink
from qosmon.collector.assignment import ASSIGN_LEAD_S, assign
from qosmon.model import (
    AssignedStream,
    ProbeCapabilities,
    ProbeLabels,
    ProbeRegistration,
    Show,
    ShowStream,
)
from tests.test_collector_api import FEED, P1, _start, _stop, put_show
from tests.test_collector_support import PROBE_TOKENS, Ctx, auth

NOW = 1_800_000_000.0


def reg(region: str = "SG", isp: str = "", edge: str = "", probe_id: str = "p1",
        **caps: Any) -> ProbeRegistration:
    c = {"joins": ["whep", "janus", "demo"], "video_codecs": ["vp8", "h264"], **caps}
    return ProbeRegistration(probe=ProbeLabels(probe_id=probe_id, region=region, isp=isp,
                                               edge_node=edge),
                             ts=NOW, capabilities=ProbeCapabilities(**c))


def show(show_id: str = "s1", start: float = NOW - 60, end: float | None = None,
         regions: list[str] | None = None, streams: list[dict[str, Any]] | None = None) -> Show:
    return Show.model_validate({
        "show_id": show_id, "start_ts": start, "end_ts": end, "regions": regions or [],
        "streams": streams if streams is not None else [
            {"stream_id": "main", "join": "whep", "url": "https://e.example/whep/main"}],
    })


def assigned(shows: list[Show], r: ProbeRegistration, now: float = NOW) -> list[str]:
    return [f"{a.show_id}/{a.stream.stream_id}" for a in assign(shows, r, now).streams]


def test_region_isp_and_edge_selectors() -> None:
    s = show(regions=["SG", "TH"], streams=[
        {"stream_id": "all", "join": "whep", "url": "https://e/1"},
        {"stream_id": "th", "join": "whep", "url": "https://e/2", "regions": ["TH"]},
        {"stream_id": "singtel", "join": "whep", "url": "https://e/3", "isps": ["singtel"]},
        {"stream_id": "edge1", "join": "whep", "url": "https://e/4", "edge_nodes": ["sin-1"]},
    ])
    assert assigned([s], reg("SG")) == ["s1/all"]
    assert assigned([s], reg("TH")) == ["s1/all", "s1/th"]
    assert assigned([s], reg("SG", isp="singtel", edge="sin-1")) == [
        "s1/all", "s1/singtel", "s1/edge1"]
    assert assigned([s], reg("US")) == []  # not one of the show's regions
    assert assigned([show()], reg("US")) == ["s1/main"]  # no regions anywhere: everyone


def test_only_running_shows_are_assigned() -> None:
    assert assigned([show(end=NOW - 1)], reg()) == []
    assert assigned([show(end=NOW + 60)], reg()) == ["s1/main"]  # ends later
    assert assigned([show(start=NOW + ASSIGN_LEAD_S + 1)], reg()) == []
    assert assigned([show(start=NOW + ASSIGN_LEAD_S - 1)], reg()) == ["s1/main"]


def test_capabilities_and_capacity() -> None:
    s = show(streams=[
        {"stream_id": "janus", "join": "janus", "url": "https://j/janus", "mountpoint": 1},
        {"stream_id": "h264", "join": "whep", "url": "https://e/1", "video_codecs": ["h264"]},
    ])
    assert assigned([s], reg(joins=["whep"], video_codecs=["vp8"])) == []
    assert assigned([s], reg()) == ["s1/janus", "s1/h264"]
    later = show("s2", start=NOW - 10)
    answer = assign([later, s], reg(max_streams=2), NOW)
    assert [a.stream.stream_id for a in answer.streams] == ["janus", "h264"]  # earliest show
    assert answer.over_capacity == 1


def test_show_stream_is_validated() -> None:
    with pytest.raises(ValidationError, match="needs mountpoint"):
        ShowStream.model_validate({"stream_id": "x", "join": "janus", "url": "https://j"})
    with pytest.raises(ValidationError):
        ShowStream.model_validate({"stream_id": "x", "join": "whep", "url": "file:///etc"})
    with pytest.raises(ValidationError):
        ShowStream.model_validate({"stream_id": "x", "join": "whep", "url": "https://e",
                                   "credential": "../x"})
    with pytest.raises(ValidationError, match="stream_id 'main' listed twice"):
        show(streams=[{"stream_id": "main", "join": "whep", "url": "https://e/1"},
                      {"stream_id": "main", "join": "whep", "url": "https://e/2"}])


# --- the probe's side ------------------------------------------------------------

def probe_config(**kw: Any) -> ProbeConfig:
    return ProbeConfig.model_validate({
        "labels": {"probe_id": "p1", "region": "SG"}, "collector_url": "http://127.0.0.1:9",
        "token": "t", **kw})


def test_probe_without_streams_needs_a_collector() -> None:
    assert probe_config().streams == []
    with pytest.raises(ValidationError, match="no streams"):
        ProbeConfig.model_validate({"labels": {"probe_id": "p1", "region": "SG"}})
    with pytest.raises(ValidationError, match="no streams"):
        probe_config(assignment=False)


def test_assigned_credential_is_resolved_by_name_only(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("s3cret\n")
    cfg = probe_config(credentials={"edge": {"token_file": str(tmp_path / "tok")}})
    stream = {"stream_id": "m", "join": "whep", "url": "https://e/w"}
    known = target_for(AssignedStream.model_validate(
        {"show_id": "s", "stream": {**stream, "credential": "edge"}}), cfg)
    assert known.token_source.read() == "s3cret"
    unknown = target_for(AssignedStream.model_validate(
        {"show_id": "s", "stream": {**stream, "credential": "other"}}), cfg)
    with pytest.raises(CredentialError, match="no credential 'other'"):
        unknown.token_source.read()
    plain = target_for(AssignedStream.model_validate({"show_id": "s", "stream": stream}), cfg)
    assert plain.token_source.read() is None


async def test_agent_follows_the_assignment_and_keeps_config_streams() -> None:
    cfg = probe_config(streams=[{"show_id": "fixed", "stream_id": "a", "join": "whep",
                                 "url": "http://127.0.0.1:9/w"}], max_streams=2)
    agent = ProbeAgent(cfg, MemorySink())
    async with aiohttp.ClientSession() as http:
        for a in cfg.streams:
            agent._start(a, http)

        def targets(*ids: str) -> list[Any]:
            return [target_for(AssignedStream.model_validate({"show_id": "s", "stream": {
                "stream_id": i, "join": "whep", "url": f"http://127.0.0.1:9/{i}"}}), cfg)
                for i in ids]

        agent.apply_assignment(targets("x", "y", "z"), http)
        assert agent.watching == [("fixed", "a"), ("s", "x"), ("s", "y")]  # max_streams
        agent.apply_assignment(targets("y"), http)
        assert agent.watching == [("fixed", "a"), ("s", "y")]
        agent.apply_assignment([], http)
        assert agent.watching == [("fixed", "a")]  # the config's stream stays
        for r in agent._running.values():
            r.stop.set()
        for w in list(agent._running.values()):
            await w.task


# --- the collector's endpoint ------------------------------------------------------

@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Ctx]:
    ctx = await _start(tmp_path)
    try:
        yield ctx
    finally:
        await _stop(ctx)


async def poll(c: Ctx, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    async with c.http.post(c.url("/api/v1/probes/assignment"), json=body,
                           headers=headers) as r:
        return r.status, await r.json()


async def test_endpoint_assigns_and_refuses(c: Ctx) -> None:
    await put_show(c, "show-a", regions=["ID"], start_ts=time.time() - 60, streams=[
        {"stream_id": "main", "join": "whep", "url": "https://e/whep/main"}])
    body = reg("ID").model_dump(mode="json")
    status, answer = await poll(c, body, P1)
    assert status == 200, answer
    assert [(a["show_id"], a["stream"]["stream_id"]) for a in answer["streams"]] == [
        ("show-a", "main")]
    status, _ = await poll(c, reg("TH").model_dump(mode="json"), P1)
    assert status == 200
    status, err = await poll(c, body, {})
    assert status == 401
    other = next(p for p in PROBE_TOKENS if p != "p1")
    status, err = await poll(c, body, auth(PROBE_TOKENS[other]))
    assert status == 403 and err["field"] == "probe.probe_id"
    status, err = await poll(c, body, FEED)
    assert status == 403
    status, err = await poll(c, {**body, "capabilities": {"joins": []}}, P1)
    assert status == 400 and "capabilities" in err["field"]
    async with c.http.get(c.url("/api/v1/assignments")) as r:
        view = await r.json()
    assert [(p["probe_id"], p["streams"]) for p in view["probes"]] == [("p1", [])]  # last poll


async def test_a_pinned_token_gets_only_its_own_place_and_shows(tmp_path: Path) -> None:
    """A leaked probe token pinned to SG cannot register as another region to
    be given that region's streams, nor get streams of shows it may not
    post for."""
    probes = [{"probe_id": p, "token": t} for p, t in PROBE_TOKENS.items()]
    probes[0] = {**probes[0], "labels": {"region": "SG"}, "shows": ["show-sg"]}
    ctx = await _start(tmp_path, probes=probes)
    try:
        for show_id, region in (("show-sg", "SG"), ("show-other", "SG"), ("show-th", "TH")):
            await put_show(ctx, show_id, regions=[region], start_ts=time.time() - 60, streams=[
                {"stream_id": "main", "join": "whep", "url": f"https://e/whep/{show_id}"}])
        status, err = await poll(ctx, reg("TH").model_dump(mode="json"), P1)
        assert status == 403 and err["field"] == "probe.region"
        assert "pinned to region 'SG'" in err["error"]
        status, answer = await poll(ctx, reg("SG").model_dump(mode="json"), P1)
        assert status == 200
        assert [a["show_id"] for a in answer["streams"]] == ["show-sg"]
    finally:
        await _stop(ctx)
