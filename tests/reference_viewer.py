"""The probe next to a reference browser, on a libwebrtc sender, under known
impairments (used by bench/browser_reference.py and
tests/test_probe_browser_reference.py: one code path).

Headless Chromium publishes a canvas picture and a tone behind a Bearer-token
WHEP endpoint (tests/libwebrtc_origin.py) in the root namespace. The probe
(``qosmon probe --whep``, its own process) and a second headless Chromium
(the reference viewer, W3C inbound-rtp stats) each watch it from their own
network namespace (tests/viewer_netns.py; needs root), so each gets the same
impairment on its own path: nftables random drop in its namespace (the
counter on its video SSRC is the ground truth of path loss) and a tc tbf
squeeze. Each viewer has its own session, so its own encoder and congestion
control: the sender's per-session outbound-rtp stats are reported too.

Each phase: the impairment for ``phase_s`` seconds, then ``TAIL_S`` clean,
all counted in one window (a freeze still going when the impairment stops is
counted when it ends).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.chromium import chromium, chromium_path, evaluate, open_page
from tests.libwebrtc_origin import LibwebrtcOrigin
from tests.viewer_netns import ViewerNetns

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "reference-viewer-token"
TAIL_S = 6.0
WARMUP_S = 8.0
PHASES: list[tuple[str, int, int | None]] = [
    ("clean", 0, None), ("loss5", 5, None), ("loss15", 15, None), ("squeeze600", 0, 600),
]


def probe_samples(path: Path, t0: float, t1: float) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        s = json.loads(line)
        if t0 < s["ts"] <= t1 and s["state"] == "connected":
            out.append(s)
    return out


def delta(a: dict[str, Any], b: dict[str, Any], key: str) -> float:
    return float(b.get(key) or 0) - float(a.get(key) or 0)


def by_session(stats: list[dict[str, Any]], sid: str, kind: str = "video") -> dict[str, Any]:
    return next((s for s in stats if s["id"] == sid and s["kind"] == kind), {})


def pct(a: float, b: float) -> float | None:
    return None if not b else round(100.0 * (a - b) / b, 1)


async def compare(codec: str = "h264", phase_s: float = 20.0,
                  phases: list[tuple[str, int, int | None]] | None = None,
                  report: Callable[[str, dict[str, Any]], None] = lambda n, f: None,
                  ) -> dict[str, Any]:
    """Run the phases (name, loss %, rate kbit/s or None) and return the
    figures of each; ``report`` is called as each phase ends."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("no Chromium installed")
    with ViewerNetns(1) as pns, ViewerNetns(2) as bns:
        async with LibwebrtcOrigin(TOKEN, hosts=(pns.root_ip, bns.root_ip)) as origin:
            return await _measure(codec, phase_s, phases or PHASES, report, binary, origin,
                                  pns, bns)


async def _measure(codec: str, phase_s: float, phases: list[tuple[str, int, int | None]],
                   report: Callable[[str, dict[str, Any]], None], binary: str,
                   origin: LibwebrtcOrigin, pns: ViewerNetns, bns: ViewerNetns,
                   ) -> dict[str, Any]:
    total = WARMUP_S + len(phases) * (phase_s + TAIL_S) + 10
    out_file = pns.dir / "probe.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QOSMON_WHEP_TOKEN": TOKEN}
    probe = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", pns.ns, sys.executable, "-m", "qosmon.cli", "probe",
        "--whep", origin.url(codec, host=pns.root_ip), "--token-env", "QOSMON_WHEP_TOKEN",
        "--ice-host", pns.ns_ip, "--duration", str(total), "--output", str(out_file),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True)
    try:
        while not origin.answered:
            if probe.returncode is not None:
                raise RuntimeError("the probe exited before joining")
            await asyncio.sleep(0.1)
        probe_sid = origin.answered[0]
        flags = [f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {bns.root_ip}",
                 "--disable-features=WebRtcHideLocalIpsWithMdns",
                 "--autoplay-policy=no-user-gesture-required",
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding"]
        async with chromium(binary, extra_flags=flags, netns=bns.ns) as cdp:
            page = await open_page(cdp, f"{origin.bases[bns.root_ip]}/viewer")
            url = origin.url(codec, host=bns.root_ip)
            await evaluate(cdp, page, f"watch({json.dumps(url)}, {json.dumps(TOKEN)})")
            browser_sid = origin.answered[-1]
            await asyncio.sleep(WARMUP_S)
            sent = await origin.sender_stats()
            ssrc = {"probe": by_session(sent, probe_sid)["ssrc"],
                    "browser": by_session(sent, browser_sid)["ssrc"]}
            codec_name = by_session(sent, probe_sid).get("mimeType")
            results = {}
            for name, loss, kbit in phases:
                for ns, who in ((pns, "probe"), (bns, "browser")):
                    ns.set_loss(loss, ssrc[who])
                    ns.set_rate(kbit)
                    ns.reset_counters()
                t0 = time.time()
                b0 = await evaluate(cdp, page, "stats()")
                s0 = await origin.sender_stats()
                await asyncio.sleep(phase_s)
                squeezed = {"probe": pns.rate_dropped(), "browser": bns.rate_dropped()}
                for ns in (pns, bns):
                    ns.set_loss(0, ssrc["probe" if ns is pns else "browser"])
                    ns.set_rate(None)
                await asyncio.sleep(TAIL_S)
                b1 = await evaluate(cdp, page, "stats()")
                s1 = await origin.sender_stats()
                t1 = time.time()
                results[name] = figures(
                    probe_samples(out_file, t0, t1), b0, b1, s0, s1, probe_sid, browser_sid,
                    pns.counters(), bns.counters(), t1 - t0)
                results[name]["tbf_dropped_packets"] = squeezed
                report(name, results[name])
    finally:
        if probe.returncode is None:
            probe.terminate()
            await asyncio.wait_for(probe.wait(), 20)
    return {"codec": codec_name, "phase_s": phase_s, "tail_s": TAIL_S, "phases": results}


def figures(samples: list[dict[str, Any]], b0: dict[str, Any], b1: dict[str, Any],
            s0: list[dict[str, Any]], s1: list[dict[str, Any]], probe_sid: str,
            browser_sid: str, pc: Any, bc: Any, window_s: float) -> dict[str, Any]:
    bv0, bv1 = b0.get("video", {}), b1.get("video", {})
    bdt = b1["ts"] - b0["ts"]
    expected = sum(s["packets_expected"] or 0 for s in samples)
    received = sum(s["packets_received"] or 0 for s in samples)
    lost_b = delta(bv0, bv1, "packetsLost")
    recv_b = delta(bv0, bv1, "packetsReceived")

    def sender_kbps(sid: str) -> float:
        a, b = by_session(s0, sid), by_session(s1, sid)
        return round(delta(a, b, "bytesSent") * 8 / window_s / 1000, 1)

    def mean(key: str) -> float | None:
        vals = [s[key] for s in samples if s.get(key) is not None]
        return round(sum(vals) / len(vals), 2) if vals else None

    probe_frozen = sum((s.get("freeze_ms") or 0) + (s.get("pause_ms") or 0)
                       for s in samples) / 1000
    browser_frozen = (delta(bv0, bv1, "totalFreezesDuration")
                      + delta(bv0, bv1, "totalPausesDuration"))
    out = {
        "samples": len(samples),
        "truth_loss_pct_probe_path": round(100 * pc.media_dropped / max(1, pc.media_in), 2),
        "probe_loss_pct": round(100 * (expected - received) / max(1, expected), 2),
        "truth_loss_pct_browser_path": round(100 * bc.media_dropped / max(1, bc.media_in), 2),
        "browser_loss_pct": round(100 * lost_b / max(1, lost_b + recv_b), 2),
        "probe_bitrate_kbps": mean("bitrate_kbps"),
        "sender_kbps_to_probe": sender_kbps(probe_sid),
        "browser_kbps": round(delta(bv0, bv1, "bytesReceived") * 8 / bdt / 1000, 1),
        "sender_kbps_to_browser": sender_kbps(browser_sid),
        "probe_fps": mean("fps"),
        "browser_fps": round(delta(bv0, bv1, "framesDecoded") / bdt, 2),
        "probe_frozen_s": round(probe_frozen, 2),
        "browser_frozen_s": round(browser_frozen, 2),
        "browser_freezes": delta(bv0, bv1, "freezeCount"),
        "probe_freezes": sum(s.get("freeze_count") or 0 for s in samples),
        "browser_nack": delta(bv0, bv1, "nackCount"),
        "browser_pli": delta(bv0, bv1, "pliCount"),
    }
    # Figures the probe may carry beyond the basic set (received bitrate
    # with retransmissions, goodput...), reported when present.
    for key in ("received_kbps", "rtx_kbps", "goodput_kbps", "stuck_ms"):
        if any(key in s for s in samples):
            out[f"probe_{key}"] = mean(key)
    out["probe_vs_browser_kbps_pct"] = pct(out["probe_bitrate_kbps"] or 0, out["browser_kbps"])
    out["probe_vs_browser_fps_pct"] = pct(out["probe_fps"] or 0, out["browser_fps"])
    out["probe_loss_error_pp"] = round(out["probe_loss_pct"] - out["truth_loss_pct_probe_path"],
                                       2)
    return out


