"""A viewer's path breaks under a running session: a browser restarts ICE
and keeps watching; so does the probe, when the WHEP server takes PATCHes.

``qosmon probe --whep`` runs in its own network namespace (tests/viewer_netns.py)
against the libwebrtc origin (headless Chromium behind a WHEP endpoint,
tests/libwebrtc_origin.py). The break: nftables in the namespace drops every
UDP packet to the ports the probe has open at that moment, as when a NAT
mapping or a mobile handover takes the old path away; a new ICE path (new
sockets) gets through. With PATCH offered, the session must carry on (one
POST, one ICE restart, media back within seconds, never ``failed``); without,
the probe only gets back by joining again once the session is dead."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import chromium_path
from tests.libwebrtc_origin import LibwebrtcOrigin
from tests.viewer_netns import ViewerNetns, skip_unless_netns_possible

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.server]

TOKEN = "ice-restart-token-51aa"
REPO = Path(__file__).resolve().parent.parent
BREAK_AFTER_S = 6.0
RUN_S = 26.0


def _probe_ports(ns: ViewerNetns, pid: int) -> list[int]:
    out = ns.netns("ss", "-u", "-a", "-n", "-p", "-H").stdout
    ports = []
    for line in out.splitlines():
        if f"pid={pid}," in line:
            local = line.split()[3]
            ports.append(int(local.rsplit(":", 1)[1]))
    return sorted(set(ports))


async def _watch_through_a_break(restart: bool, tmp_path: Path) -> dict[str, Any]:
    with ViewerNetns(3) as ns:
        async with LibwebrtcOrigin(TOKEN, hosts=(ns.root_ip,)) as origin:
            query = {} if restart else {"restart": "0"}
            out = tmp_path / f"samples-{restart}.jsonl"
            env = {**os.environ, "PYTHONPATH": str(REPO), "QOSMON_WHEP_TOKEN": TOKEN}
            probe = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", ns.ns, sys.executable, "-m", "qosmon.cli", "-v",
                "probe", "--whep", origin.url("h264", host=ns.root_ip, **query),
                "--token-env", "QOSMON_WHEP_TOKEN", "--ice-host", ns.ns_ip,
                "--duration", str(RUN_S), "--output", str(out),
                cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)
            try:
                await asyncio.sleep(BREAK_AFTER_S)
                # ``ip netns exec`` execs the probe: same pid.
                ports = _probe_ports(ns, probe.pid)
                assert ports, ns.netns("ss", "-u", "-a", "-n", "-p").stdout
                ns.netns("nft", "add", "rule", "inet", ns.table, "impair", "udp", "dport",
                         "{ " + ", ".join(map(str, ports)) + " }", "drop")
                broke_at = asyncio.get_running_loop().time()
                log, _ = await asyncio.wait_for(probe.communicate(), RUN_S + 30)
            finally:
                if probe.returncode is None:
                    probe.kill()
                    await probe.wait()
            assert probe.returncode == 0, log.decode()
            samples = [json.loads(line) for line in out.read_text().splitlines()]
            return {"samples": samples, "log": log.decode(errors="replace"),
                    "answered": list(origin.answered), "restarted": list(origin.restarted),
                    "broke_at": broke_at, "run_s": RUN_S}


def _seconds_without_frames_after_break(samples: list[dict[str, Any]]) -> int:
    """Samples from the break on (by position: one a second) until frames
    come again in a connected session."""
    start = int(BREAK_AFTER_S) - 1
    for i, s in enumerate(samples[start:]):
        if i > 1 and s["state"] == "connected" and (s["fps"] or 0) > 5:
            return i
    return len(samples) - start


@pytest.mark.timeout(150)
async def test_ice_restart_keeps_the_session_through_a_path_break(tmp_path: Path) -> None:
    skip_unless_netns_possible()
    if chromium_path() is None:
        pytest.skip("needs Debian's chromium")
    run = await _watch_through_a_break(True, tmp_path)
    samples = run["samples"]
    states = [(s["state"], s["fps"]) for s in samples]
    assert len(run["answered"]) == 1, ("one POST: the session was kept", run["log"][-3000:])
    assert len(run["restarted"]) == 1, (run["restarted"], run["log"][-3000:])
    restarted = r"ICE restarted after \d+\.\d s without media \(took \d+\.\d\d s\)"
    assert re.search(restarted, run["log"]), run["log"]
    assert not any(s["state"] in ("failed", "join_failed") for s in samples), states
    gap = _seconds_without_frames_after_break(samples)
    # 3 s of silence before the restart, then gathering, the PATCH and the
    # checks; Chromium keeps sending on the new path at once.
    assert gap <= 8, (gap, states)
    tail = samples[-5:]
    assert all(s["state"] == "connected" and (s["fps"] or 0) > 5 for s in tail), tail
    assert TOKEN not in run["log"]


@pytest.mark.timeout(150)
async def test_without_patch_the_probe_joins_again(tmp_path: Path) -> None:
    """The same break on a server that offers no PATCH: the session is called
    dead after ``dead_after_s`` of silence (10 s) and joined anew, so the
    picture is gone for longer and the samples say ``failed`` meanwhile."""
    skip_unless_netns_possible()
    if chromium_path() is None:
        pytest.skip("needs Debian's chromium")
    run = await _watch_through_a_break(False, tmp_path)
    samples = run["samples"]
    assert run["restarted"] == []
    assert len(run["answered"]) == 2, (run["answered"], run["log"][-3000:])
    assert any(s["state"] == "failed" and "no media packets" in (s["error"] or "")
               for s in samples), [(s["state"], s["error"]) for s in samples]
    assert _seconds_without_frames_after_break(samples) >= 10
