"""The probe next to a reference browser, watching the same origin under
known impairments (used by bench/browser_reference.py and
tests/test_probe_browser_reference.py: one code path). Needs root.

Two origins:

- ``libwebrtc``: headless Chromium publishes a canvas picture and a tone
  behind a Bearer-token WHEP endpoint (tests/libwebrtc_origin.py) in the
  root namespace. Each viewer has its own session, so its own encoder and
  congestion control; the encoder is capped (``MAX_KBPS``) so that two
  viewers whose bandwidth estimates allow more get streams of the same rate,
  and the sender's per-session outbound-rtp stats are reported too.
- ``janus``: Janus's H.264 + Opus mountpoint fed by ffmpeg (a looped clip,
  no congestion control) in its own namespace (tests/janus_harness.py);
  both viewers get the very same packets. Chromium joins through the
  streaming plugin's REST API (tests/data/janus_viewer.html).

The probe (``qosmon probe``, its own process) and a second headless
Chromium (the reference viewer: W3C inbound-rtp stats) each watch from their
own network namespace (tests/viewer_netns.py), joined to the root namespace
(libwebrtc) or straight to Janus's namespace, so each gets the same
impairment on its own path: nftables random drop in its namespace (the
counter on the stream's SSRC is the ground truth of path loss), a tc tbf
squeeze, or a drop of the audio packets only.

Each phase: the impairment for ``phase_s`` seconds, then ``TAIL_S`` clean,
all counted in one window (a freeze still going when the impairment stops is
counted when it ends). :func:`verdicts` holds the figures against the
targets the probe must meet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.chromium import chromium, chromium_path, evaluate, open_page
from tests.janus_harness import (
    H264_MOUNTPOINT,
    H264_PT,
    HTTP_PORT,
    OPUS_PT,
    JanusNetns,
    encode_h264_clip,
)
from tests.libwebrtc_origin import LibwebrtcOrigin
from tests.viewer_netns import ViewerNetns

ROOT = Path(__file__).resolve().parent.parent
JANUS_PAGE = Path(__file__).parent / "data" / "janus_viewer.html"
TOKEN = "reference-viewer-token"
TAIL_S = 6.0
WARMUP_S = 8.0
# The libwebrtc sender's video never goes above this: both viewers' streams
# then have the same rate while bandwidth allows it (their encoders are
# apart, and would otherwise settle 10 % or more apart on a clean path: the
# probe's bandwidth estimate, aiortc's REMB, let it to about 560 kbit/s
# where Chromium's transport-wide estimate let it to 600 and more).
MAX_KBPS = 500
PAGE_PORT = 8700  # the Janus viewer page, on the viewer namespace's loopback
ORIGINS = ("libwebrtc", "janus")


@dataclass(frozen=True)
class Phase:
    name: str
    loss_pct: int = 0
    rate_kbit: int | None = None
    # "all": the random drop hits every UDP packet (the video SSRC's counted
    # apart); "audio": only the audio SSRC's packets are dropped.
    drop: str = "all"

    @property
    def video_judged(self) -> bool:
        """Received rate and frame rate are held to their targets (not when
        only audio is dropped)."""
        return self.drop == "all"

    @property
    def frozen_judged(self) -> bool:
        """Frozen time is held to its target: under loss of video or a squeeze."""
        return bool((self.loss_pct and self.drop == "all") or self.rate_kbit)


PHASES: list[Phase] = [
    Phase("clean"), Phase("loss5", 5), Phase("loss15", 15), Phase("squeeze600", rate_kbit=600),
    Phase("audio15", 15, drop="audio"),
]
# The libwebrtc sender adapts to its bandwidth estimate and never sends more
# than MAX_KBPS: 600 kbit/s would not squeeze it. It is squeezed in the same
# proportion as Janus's ~1 Mbit/s feed (video, audio and headers) is by 600:
# to 60 % of its cap. (Raising the cap instead would let the two sessions'
# encoders settle apart on a clean path, see MAX_KBPS.)
SQUEEZE_OF_CAP = 0.6
LIBWEBRTC_SQUEEZE = Phase(f"squeeze{round(SQUEEZE_OF_CAP * MAX_KBPS)}",
                          rate_kbit=round(SQUEEZE_OF_CAP * MAX_KBPS))


def phases_for(origin: str) -> list[Phase]:
    """The phases run on ``origin``: its squeeze is one that bites."""
    if origin == "libwebrtc":
        return [LIBWEBRTC_SQUEEZE if p.rate_kbit else p for p in PHASES]
    return list(PHASES)

# The targets (what the probe must match, from its definition of done).
LOSS_PP = 1.0  # path loss vs the firewall's count, percentage points
KBPS_PCT = 5.0  # received bitrate vs the browser's bytesReceived rate
FPS_PCT = 10.0  # frame rate vs the browser's framesDecoded rate
FROZEN_PCT = 20.0  # frozen time vs the browser's freeze + pause total ...
FROZEN_S = 1.0  # ... or this many seconds, whichever is larger


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


def pct(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(100.0 * (a - b) / b, 1)


# -- the two origins ------------------------------------------------------------


class _Origin:
    """How each viewer joins, and who tells the SSRCs and sender rates."""

    name = ""
    sender_stats_known = False

    async def close(self) -> None:
        return None

    def probe_args(self, ns: ViewerNetns) -> list[str]:
        raise NotImplementedError

    async def browser_join(self, cdp: Any, ns: ViewerNetns) -> str:
        raise NotImplementedError

    async def sender_stats(self) -> list[dict[str, Any]]:
        return []

    def streams(self, who: str, sent: list[dict[str, Any]],
                browser: dict[str, Any]) -> dict[str, dict[str, int]]:
        """How the firewall on ``who``'s path picks out each stream (video,
        audio): ``set_loss`` keywords (its SSRC or payload type)."""
        raise NotImplementedError


class _Libwebrtc(_Origin):
    name = "libwebrtc"
    sender_stats_known = True

    def __init__(self, origin: LibwebrtcOrigin, codec: str) -> None:
        self.origin = origin
        self.codec = codec
        self.sessions: dict[str, str] = {}  # viewer -> WHEP resource id

    def probe_args(self, ns: ViewerNetns) -> list[str]:
        return ["--whep", self.origin.url(self.codec, host=ns.root_ip, max_kbps=str(MAX_KBPS)),
                "--token-env", "QOSMON_WHEP_TOKEN"]

    async def probe_joined(self) -> None:
        while not self.origin.answered:
            await asyncio.sleep(0.1)
        self.sessions["probe"] = self.origin.answered[0]

    async def browser_join(self, cdp: Any, ns: ViewerNetns) -> str:
        page = await open_page(cdp, f"{self.origin.bases[ns.root_ip]}/viewer")
        url = self.origin.url(self.codec, host=ns.root_ip, max_kbps=str(MAX_KBPS))
        await evaluate(cdp, page, f"watch({json.dumps(url)}, {json.dumps(TOKEN)})")
        self.sessions["browser"] = self.origin.answered[-1]
        return page

    async def sender_stats(self) -> list[dict[str, Any]]:
        return await self.origin.sender_stats()

    def streams(self, who: str, sent: list[dict[str, Any]],
                browser: dict[str, Any]) -> dict[str, dict[str, int]]:
        sid = self.sessions[who]
        return {kind: {"media_ssrc": by_session(sent, sid, kind)["ssrc"]}
                for kind in ("video", "audio")}


class _Janus(_Origin):
    name = "janus"

    def __init__(self, janus: JanusNetns) -> None:
        self.janus = janus
        self.page_servers: list[asyncio.subprocess.Process] = []  # one per browser

    def probe_args(self, ns: ViewerNetns) -> list[str]:
        return ["--janus", f"http://{ns.root_ip}:{HTTP_PORT}/janus",
                "--mountpoint", str(H264_MOUNTPOINT)]

    async def browser_join(self, cdp: Any, ns: ViewerNetns) -> str:
        # The page is served on the viewer namespace's own loopback: a page
        # from there may call Janus on a private address (Chromium refuses
        # that to a page of no address, such as a data: URL).
        folder = ns.dir / "page"
        folder.mkdir(exist_ok=True)
        (folder / "janus_viewer.html").write_bytes(JANUS_PAGE.read_bytes())
        self.page_servers.append(await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", ns.ns, sys.executable, "-m", "http.server",
            str(PAGE_PORT), "--bind", "127.0.0.1", "--directory", str(folder),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True))
        url = f"http://127.0.0.1:{PAGE_PORT}/janus_viewer.html"
        await asyncio.sleep(0.5)
        page = await open_page(cdp, url)
        for _ in range(50):  # until the server listens (bounded: 10 s)
            if await evaluate(cdp, page, "typeof watchJanus") == "function":
                break
            await asyncio.sleep(0.2)
            await cdp.call("Page.navigate", {"url": url}, session=page)
        api = f"http://{ns.root_ip}:{HTTP_PORT}/janus"
        await evaluate(cdp, page, f"watchJanus({json.dumps(api)}, {H264_MOUNTPOINT})")
        return page

    async def close(self) -> None:
        for server in self.page_servers:
            if server.returncode is None:
                server.terminate()
                await asyncio.wait_for(server.wait(), 10)

    def streams(self, who: str, sent: list[dict[str, Any]],
                browser: dict[str, Any]) -> dict[str, dict[str, int]]:
        # Janus gives each viewer's streams SSRCs of their own, but keeps
        # the mountpoint's payload types in every offer.
        return {"video": {"media_pt": H264_PT}, "audio": {"media_pt": OPUS_PT}}


@contextlib.asynccontextmanager
async def _origin(name: str, codec: str) -> AsyncIterator[tuple[_Origin, ViewerNetns,
                                                                ViewerNetns]]:
    if name == "libwebrtc":
        with ViewerNetns(1) as pns, ViewerNetns(2) as bns:
            async with LibwebrtcOrigin(TOKEN, hosts=(pns.root_ip, bns.root_ip)) as origin:
                yield _Libwebrtc(origin, codec), pns, bns
        return
    if name != "janus":
        raise ValueError(f"origin: one of {', '.join(ORIGINS)}")
    clip_dir = Path(tempfile.mkdtemp(prefix="qosmon-reference-clip-"))
    try:
        clip = encode_h264_clip(clip_dir / "clip.ts")
        with JanusNetns(index=5, ice_interfaces=(f"{ViewerNetns.prefix}r",)) as janus:
            janus.start_h264_feed(clip)
            with ViewerNetns(1, peer_ns=janus.ns) as pns, \
                    ViewerNetns(2, peer_ns=janus.ns) as bns:
                await asyncio.sleep(2.5)  # a whole GOP: Janus holds a keyframe
                o = _Janus(janus)
                try:
                    yield o, pns, bns
                finally:
                    await o.close()
    finally:
        for f in clip_dir.iterdir():
            f.unlink()
        clip_dir.rmdir()


async def compare(origin: str = "libwebrtc", codec: str = "h264", phase_s: float = 20.0,
                  phases: list[Phase] | None = None,
                  report: Callable[[str, dict[str, Any]], None] = lambda n, f: None,
                  repeat: int = 1) -> dict[str, Any]:
    """Run the phases on ``origin`` ("libwebrtc" or "janus"; Janus's
    mountpoint is H.264 whatever ``codec`` says), all of them ``repeat``
    times over, and return the figures of each phase; ``report`` is called
    as each window ends. With more than one window a phase's figures are
    the means of its windows, held against the targets, with how many of
    the windows met each target on its own (``window_passes``)."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("no Chromium installed")
    async with _origin(origin, codec) as (o, pns, bns):
        return await _measure(o, phase_s, phases or phases_for(origin), report, binary,
                              pns, bns, repeat)


async def _wait_probe_joined(o: _Origin, probe: asyncio.subprocess.Process,
                             out_file: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if probe.returncode is not None:
            raise RuntimeError("the probe exited before joining")
        if isinstance(o, _Libwebrtc):
            if o.origin.answered:
                await o.probe_joined()
                return
        elif out_file.exists() and '"connected"' in out_file.read_text():
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the probe did not join in 30 s")


def _impair(paths: list[tuple[ViewerNetns, dict[str, dict[str, int]]]], ph: Phase,
            on: bool) -> None:
    """Start (``on``) or end ``ph``'s impairment on each viewer's path;
    each path comes with how its firewall picks out each stream."""
    kind = "audio" if ph.drop == "audio" else "video"
    for ns, streams in paths:
        if on:
            ns.set_loss(ph.loss_pct, only_media=ph.drop == "audio", **streams[kind])
            ns.set_rate(ph.rate_kbit)
            ns.reset_counters()
        else:
            ns.set_loss(0, **streams[kind])
            ns.set_rate(None)


def browser_window(b0: dict[str, Any], b1: dict[str, Any]) -> dict[str, float]:
    """A browser's video figures between two ``stats()`` readings: received
    kbit/s (``bytesReceived``), frames decoded a second, and frozen time
    (freezes + pauses, s)."""
    v0, v1 = b0.get("video", {}), b1.get("video", {})
    dt = b1["ts"] - b0["ts"]
    return {"kbps": round(delta(v0, v1, "bytesReceived") * 8 / dt / 1000, 1),
            "fps": round(delta(v0, v1, "framesDecoded") / dt, 2),
            "frozen_s": round(delta(v0, v1, "totalFreezesDuration")
                              + delta(v0, v1, "totalPausesDuration"), 2)}


def _browser_flags(ns: ViewerNetns) -> list[str]:
    return [f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {ns.root_ip}, EXCLUDE 127.0.0.1",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--autoplay-policy=no-user-gesture-required",
            "--disable-background-timer-throttling", "--disable-renderer-backgrounding"]


async def control(origin: str = "libwebrtc", codec: str = "h264", phase_s: float = 20.0,
                  phases: list[Phase] | None = None,
                  report: Callable[[str, dict[str, Any]], None] = lambda n, f: None,
                  repeat: int = 1) -> dict[str, Any]:
    """The reference against itself: two Chromium viewers of ``origin``,
    each in the namespace (and, on the libwebrtc sender, with the session
    of its own) that the probe and the browser have in :func:`compare`,
    under the same phases, ``repeat`` times over. How far apart two
    browsers' figures are is the most a comparison of the probe with one
    browser can resolve: each loses its own random packets, and on the
    libwebrtc sender each session has its own congestion controller, and
    so its own rate. Each window also says whether browser "a" would meet
    the probe's targets against browser "b"."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("no Chromium installed")
    phases = phases or phases_for(origin)
    windows: list[tuple[str, dict[str, Any]]] = []
    async with _origin(origin, codec) as (o, ans, bns), \
            chromium(binary, extra_flags=_browser_flags(ans), netns=ans.ns) as ca, \
            chromium(binary, extra_flags=_browser_flags(bns), netns=bns.ns) as cb:
        pa = await o.browser_join(ca, ans)
        if isinstance(o, _Libwebrtc):
            o.sessions["probe"] = o.sessions["browser"]  # the probe's place: "a"
        pb = await o.browser_join(cb, bns)
        await asyncio.sleep(WARMUP_S)
        sent = await o.sender_stats()
        paths = [(ans, o.streams("probe", sent, {})), (bns, o.streams("browser", sent, {}))]
        for _ in range(repeat):
            for ph in phases:
                _impair(paths, ph, on=True)
                a0, b0 = await evaluate(ca, pa, "stats()"), await evaluate(cb, pb, "stats()")
                await asyncio.sleep(phase_s)
                _impair(paths, ph, on=False)
                await asyncio.sleep(TAIL_S)
                a1, b1 = await evaluate(ca, pa, "stats()"), await evaluate(cb, pb, "stats()")
                f = {f"{who}_{k}": v for who, x0, x1 in (("a", a0, a1), ("b", b0, b1))
                     for k, v in browser_window(x0, x1).items()}
                f["truth_loss_pct_a_path"] = _truth_pct(ans.counters())
                f["truth_loss_pct_b_path"] = _truth_pct(bns.counters())
                f.update(_control_compared(ph, f))
                windows.append((ph.name, f))
                report(ph.name, f)
    results = {}
    for ph in phases:
        mine = [f for n, f in windows if n == ph.name]
        results[ph.name] = _control_compared(ph, aggregate(mine))
        results[ph.name]["windows_met"] = {k: sum(w["targets_met"][k] for w in mine)
                                           for k in mine[0]["targets_met"]}
    return {"origin": origin, "control": "browser_vs_browser", "phase_s": phase_s,
            "tail_s": TAIL_S, "max_kbps": MAX_KBPS if origin == "libwebrtc" else None,
            "repeat": repeat, "phases": results, "windows": windows}


def _control_compared(ph: Phase, f: dict[str, Any]) -> dict[str, Any]:
    """Browser "a" against browser "b" as the probe is held against the
    browser: the differences, and which targets they would meet."""
    out = dict(f)
    out["kbps_a_vs_b_pct"] = pct(f["a_kbps"], f["b_kbps"])
    out["fps_a_vs_b_pct"] = pct(f["a_fps"], f["b_fps"])
    out["frozen_s_a_vs_b"] = round(f["a_frozen_s"] - f["b_frozen_s"], 2)
    judged = _against_browser(ph, out["kbps_a_vs_b_pct"], out["fps_a_vs_b_pct"],
                              f["a_frozen_s"], f["b_frozen_s"])
    out["targets_met"] = {name: v["pass"] for name, v in judged.items()}
    return out


def aggregate(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Several windows of one phase as one: the mean of each figure the
    windows have (None when a window lacks it), and ``windows``, how many.
    The comparisons are then made again from the means by the caller; the
    windows of a phase are of one length, so a mean of rates is the rate
    over all of them. One window comes back as it is."""
    if len(windows) == 1:
        return dict(windows[0])
    out: dict[str, Any] = {"windows": len(windows)}
    for key in windows[0]:
        vals = [w.get(key) for w in windows]
        if any(isinstance(v, bool) or not isinstance(v, (int, float, type(None)))
               for v in vals):
            continue  # verdicts, per-path counters: not figures to average
        nums = [float(v) for v in vals if v is not None]
        out[key] = round(sum(nums) / len(nums), 2) if len(nums) == len(vals) else None
    return out


async def _measure(o: _Origin, phase_s: float, phases: list[Phase],
                   report: Callable[[str, dict[str, Any]], None], binary: str,
                   pns: ViewerNetns, bns: ViewerNetns, repeat: int) -> dict[str, Any]:
    total = WARMUP_S + repeat * len(phases) * (phase_s + TAIL_S) + 20
    out_file = pns.dir / "probe.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QOSMON_WHEP_TOKEN": TOKEN}
    probe = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", pns.ns, sys.executable, "-m", "qosmon.cli", "probe",
        *o.probe_args(pns), "--ice-host", pns.ns_ip, "--duration", str(total),
        "--output", str(out_file),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True)
    try:
        await _wait_probe_joined(o, probe, out_file)
        async with chromium(binary, extra_flags=_browser_flags(bns), netns=bns.ns) as cdp:
            page = await o.browser_join(cdp, bns)
            await asyncio.sleep(WARMUP_S)
            sent = await o.sender_stats()
            first = await evaluate(cdp, page, "stats()")
            paths = [(pns, o.streams("probe", sent, first)),
                     (bns, o.streams("browser", sent, first))]
            codec_name = (by_session(sent, o.sessions["probe"]).get("mimeType")
                          if isinstance(o, _Libwebrtc) else "video/H264")
            windows: list[tuple[str, dict[str, Any]]] = []
            for ph in [ph for _ in range(repeat) for ph in phases]:
                kind = "audio" if ph.drop == "audio" else "video"
                _impair(paths, ph, on=True)
                t0 = time.time()
                b0 = await evaluate(cdp, page, "stats()")
                s0 = await o.sender_stats()
                await asyncio.sleep(phase_s)
                squeezed = {"probe": pns.rate_dropped(), "browser": bns.rate_dropped()}
                _impair(paths, ph, on=False)
                await asyncio.sleep(TAIL_S)
                b1 = await evaluate(cdp, page, "stats()")
                s1 = await o.sender_stats()
                t1 = time.time()
                f = figures(probe_samples(out_file, t0, t1), b0, b1, s0, s1,
                            o.sessions if isinstance(o, _Libwebrtc) else None,
                            pns.counters(), bns.counters(), t1 - t0, kind)
                f["tbf_dropped_packets"] = squeezed
                f["verdicts"] = verdicts(ph, f)
                windows.append((ph.name, f))
                report(ph.name, f)
    finally:
        if probe.returncode is None:
            probe.terminate()
            await asyncio.wait_for(probe.wait(), 20)
    results = {}
    for ph in phases:
        mine = [f for n, f in windows if n == ph.name]
        if len(mine) == 1:
            results[ph.name] = mine[0]
            continue
        f = compared(aggregate(mine))
        f["verdicts"] = verdicts(ph, f)
        f["window_passes"] = {k: sum(bool(w["verdicts"][k]["pass"]) for w in mine)
                              for k in f["verdicts"]}
        results[ph.name] = f
    return {"origin": o.name, "codec": codec_name, "phase_s": phase_s, "tail_s": TAIL_S,
            "max_kbps": MAX_KBPS if isinstance(o, _Libwebrtc) else None, "repeat": repeat,
            "phases": results, "windows": windows if repeat > 1 else []}


def figures(samples: list[dict[str, Any]], b0: dict[str, Any], b1: dict[str, Any],
            s0: list[dict[str, Any]], s1: list[dict[str, Any]],
            sessions: dict[str, str] | None, pc: Any, bc: Any, window_s: float,
            counted: str = "video") -> dict[str, Any]:
    """The figures of one window. ``counted`` is the stream whose packets
    the firewall counted apart (and dropped, in an audio-only phase)."""
    bv0, bv1 = b0.get("video", {}), b1.get("video", {})
    ba0, ba1 = b0.get("audio", {}), b1.get("audio", {})
    bdt = b1["ts"] - b0["ts"]
    expected = sum(s["packets_expected"] or 0 for s in samples)
    received = sum(s["packets_received"] or 0 for s in samples)
    lost_b = delta(bv0, bv1, "packetsLost")
    recv_b = delta(bv0, bv1, "packetsReceived")
    alost_b = delta(ba0, ba1, "packetsLost")
    arecv_b = delta(ba0, ba1, "packetsReceived")

    def sender_kbps(who: str, key: str = "bytesSent") -> float | None:
        if sessions is None:
            return None
        a, b = by_session(s0, sessions[who]), by_session(s1, sessions[who])
        return round(delta(a, b, key) * 8 / window_s / 1000, 1)

    def sender_count(who: str, key: str) -> float | None:
        if sessions is None:
            return None
        return delta(by_session(s0, sessions[who]), by_session(s1, sessions[who]), key)

    def rr_loss_pct(who: str) -> float | None:
        lost, sent = sender_count(who, "remotePacketsLost"), sender_count(who, "packetsSent")
        return None if lost is None or not sent else round(100 * lost / sent, 2)

    def sender_target_kbps(who: str) -> float | None:
        if sessions is None:
            return None
        target = by_session(s1, sessions[who]).get("targetBitrate")
        return None if target is None else round(target / 1000, 1)

    def mean(key: str) -> float | None:
        vals = [s[key] for s in samples if s.get(key) is not None]
        return round(sum(vals) / len(vals), 2) if vals else None

    def browser_kbps(key: str, a: dict[str, Any] = bv0, b: dict[str, Any] = bv1) -> float:
        return round(delta(a, b, key) * 8 / bdt / 1000, 1)

    probe_frozen = sum((s.get("freeze_ms") or 0) + (s.get("pause_ms") or 0)
                       for s in samples) / 1000
    bw = browser_window(b0, b1)
    video_truth = (_truth_pct(pc), _truth_pct(bc)) if counted == "video" else (0.0, 0.0)
    out: dict[str, Any] = {
        "samples": len(samples),
        "truth_loss_pct_probe_path": video_truth[0],
        "probe_loss_pct": round(100 * (expected - received) / max(1, expected), 2),
        "truth_loss_pct_browser_path": video_truth[1],
        "browser_loss_pct": round(100 * lost_b / max(1, lost_b + recv_b), 2),
        "truth_packets_probe_path": pc.media_in,
        "probe_residual_loss_pct": mean("residual_loss_pct"),
        # Received bitrate: payload bytes, retransmissions included, on both.
        "probe_received_kbps": mean("received_kbps"),
        "browser_kbps": bw["kbps"],
        "probe_rtx_kbps": mean("rtx_kbps"),
        "browser_rtx_kbps": browser_kbps("retransmittedBytesReceived"),
        "browser_header_kbps": browser_kbps("headerBytesReceived"),
        "probe_bitrate_kbps": mean("bitrate_kbps"),
        "probe_goodput_kbps": mean("goodput_kbps"),
        "sender_kbps_to_probe": sender_kbps("probe"),
        "sender_kbps_to_browser": sender_kbps("browser"),
        # What each viewer asked of its own session (libwebrtc): NACKs
        # received and bytes retransmitted by the sender.
        "sender_nacks_from_probe": sender_count("probe", "nackCount"),
        "sender_nacks_from_browser": sender_count("browser", "nackCount"),
        "sender_rtx_kbps_to_probe": sender_kbps("probe", "retransmittedBytesSent"),
        "sender_rtx_kbps_to_browser": sender_kbps("browser", "retransmittedBytesSent"),
        # The PLIs each viewer sent and the keyframes its session's encoder
        # made (a keyframe costs several frames' worth of bytes), and
        # headers with padding (the sender's padding-only bandwidth probes).
        "sender_plis_from_probe": sender_count("probe", "pliCount"),
        "sender_plis_from_browser": sender_count("browser", "pliCount"),
        "sender_keyframes_to_probe": sender_count("probe", "keyFramesEncoded"),
        "sender_keyframes_to_browser": sender_count("browser", "keyFramesEncoded"),
        "sender_header_kbps_to_probe": sender_kbps("probe", "headerBytesSent"),
        "sender_header_kbps_to_browser": sender_kbps("browser", "headerBytesSent"),
        # Loss as each viewer's RTCP receiver reports told the sender (a
        # libwebrtc sender lowers its rate on it), per packet it sent.
        "rr_loss_pct_probe": rr_loss_pct("probe"),
        "rr_loss_pct_browser": rr_loss_pct("browser"),
        "sender_target_kbps_probe": sender_target_kbps("probe"),
        "sender_target_kbps_browser": sender_target_kbps("browser"),
        # The probe's own lateness (its event loop's worst timer delay per
        # second): arrival times it reports to the sender carry it.
        "probe_lag_ms_max": max((s["probe_lag_ms"] for s in samples
                                 if s.get("probe_lag_ms") is not None), default=None),
        "probe_fps": mean("fps"),
        "browser_fps": bw["fps"],
        "probe_frozen_s": round(probe_frozen, 2),
        "browser_frozen_s": bw["frozen_s"],
        "probe_freezes": sum(s.get("freeze_count") or 0 for s in samples),
        "browser_freezes": delta(bv0, bv1, "freezeCount"),
        "probe_pauses": sum(s.get("pause_count") or 0 for s in samples),
        "browser_pauses": delta(bv0, bv1, "pauseCount"),
        # How long the browser held frames before showing them: a repair that
        # comes within that hold shows no freeze.
        "browser_jitter_buffer_ms": round(
            1000 * delta(bv0, bv1, "jitterBufferDelay")
            / max(1.0, delta(bv0, bv1, "jitterBufferEmittedCount")), 1),
        "browser_jitter_buffer_target_ms": round(
            1000 * delta(bv0, bv1, "jitterBufferTargetDelay")
            / max(1.0, delta(bv0, bv1, "jitterBufferEmittedCount")), 1),
        "browser_nack": delta(bv0, bv1, "nackCount"),
        "browser_pli": delta(bv0, bv1, "pliCount"),
        # Packets the browser's session recovered by FEC, if it negotiated
        # any (the probe's does not).
        "browser_fec_packets": delta(bv0, bv1, "fecPacketsReceived"),
        "probe_audio_loss_pct": mean("audio_loss_pct"),
        "browser_audio_loss_pct": round(100 * alost_b / max(1, alost_b + arecv_b), 2),
    }
    if counted == "audio":
        out["truth_audio_loss_pct_probe_path"] = _truth_pct(pc)
        out["truth_audio_loss_pct_browser_path"] = _truth_pct(bc)
    return compared(out)


def compared(f: dict[str, Any]) -> dict[str, Any]:
    """``f`` with the probe's figures held against the browser's and the
    firewall's (one window's, or the means of several)."""
    out = dict(f)
    out["probe_vs_browser_kbps_pct"] = pct(out["probe_received_kbps"], out["browser_kbps"])
    out["probe_vs_browser_fps_pct"] = pct(out["probe_fps"], out["browser_fps"])
    out["probe_loss_error_pp"] = round(out["probe_loss_pct"] - out["truth_loss_pct_probe_path"],
                                       2)
    # Each viewer's received share of what its own session sent (libwebrtc:
    # two sessions): the same meaning measured on both sides whatever the
    # two encoders made of their bandwidth estimates.
    sp, sb = out["sender_kbps_to_probe"], out["sender_kbps_to_browser"]
    if sp and sb and out["probe_received_kbps"] is not None:
        out["received_share_pct_probe"] = round(100 * out["probe_received_kbps"] / sp, 1)
        out["received_share_pct_browser"] = round(100 * out["browser_kbps"] / sb, 1)
    return out


def _truth_pct(c: Any) -> float:
    """The path's loss by its firewall's counters (on the counted stream)."""
    return round(100 * c.media_dropped / max(1, c.media_in), 2)


def frozen_allowance_s(browser_frozen_s: float) -> float:
    """How far the probe's frozen time may be from the browser's."""
    return max(FROZEN_PCT / 100 * browser_frozen_s, FROZEN_S)


def verdicts(phase: Phase, f: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each figure of the definition of done that applies to ``phase``:
    its value, target and whether it is met."""
    out: dict[str, dict[str, Any]] = {}
    if phase.loss_pct and phase.drop == "all":
        err = f["probe_loss_error_pp"]
        out["path_loss_error_pp"] = _verdict(err, f"|x| <= {LOSS_PP}", abs(err) <= LOSS_PP)
    out.update(_against_browser(phase, f["probe_vs_browser_kbps_pct"],
                                f["probe_vs_browser_fps_pct"], f["probe_frozen_s"],
                                f["browser_frozen_s"]))
    if phase.drop == "audio":
        a, t = f["probe_audio_loss_pct"], f.get("truth_audio_loss_pct_probe_path")
        err = None if a is None or t is None else round(a - t, 2)
        out["audio_loss_error_pp"] = _verdict(
            err, f"|x| <= {LOSS_PP} (truth > 1 %)",
            err is not None and abs(err) <= LOSS_PP and (t or 0) > 1.0)
        out["video_loss_pct_when_audio_dropped"] = _verdict(
            f["probe_loss_pct"], "<= 0.5", f["probe_loss_pct"] <= 0.5)
    return out


def _verdict(value: float | None, target: str, ok: bool) -> dict[str, Any]:
    return {"value": value, "target": target, "pass": bool(ok and value is not None)}


def _against_browser(phase: Phase, kbps_pct: float | None, fps_pct: float | None,
                     frozen_s: float, browser_frozen_s: float) -> dict[str, dict[str, Any]]:
    """The targets a viewer is held to against the reference browser in
    ``phase`` (the probe, or a second browser in the control); a figure
    that could not be computed meets nothing."""
    out: dict[str, dict[str, Any]] = {}
    if phase.video_judged:
        out["received_kbps_vs_browser_pct"] = _verdict(
            kbps_pct, f"|x| <= {KBPS_PCT}", kbps_pct is not None and abs(kbps_pct) <= KBPS_PCT)
        out["fps_vs_browser_pct"] = _verdict(
            fps_pct, f"|x| <= {FPS_PCT}", fps_pct is not None and abs(fps_pct) <= FPS_PCT)
    if phase.frozen_judged:
        allowed = frozen_allowance_s(browser_frozen_s)
        out["frozen_s_vs_browser"] = _verdict(
            round(frozen_s - browser_frozen_s, 2), f"|x| <= {allowed:.2f}",
            abs(frozen_s - browser_frozen_s) <= allowed)
    return out
