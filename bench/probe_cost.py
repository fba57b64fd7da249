"""What a probe costs: CPU per watched stream, side by side with a plain
aiortc viewer that decodes, and how many 1 Mbps streams one probe process
holds on one core without falling behind; for VP8, H.264 alone and H.264
with Opus audio at 640x360, and for VP8 and H.264 + Opus at 1280x720.

Runs a real Janus in a network namespace (tests/janus_harness.py; needs
root), four mountpoints fed by ffmpeg looping clips encoded once: 1 Mbps
640x360 VP8, and 1 Mbps 640x360 H.264 (libx264 baseline, packetization
mode 1) with 48 kbps Opus; the same two at 1280x720 and 2.5 Mbps, what live
shows send. 360p is the worst case for the probe's advantage: its cost grows
with packets (bitrate), a decoder's with pixels. The 720p rows use fewer
streams (4) because the decoding viewer, on one core, must still keep up
with every frame: one that falls behind spends less CPU than decoding all
would, so its figure (and the ratio) would be understated; the table says
so when it happens. The ramp also has one 720p step: one probe process
with 30 H.264 + Opus streams (10, 20, 30 without --quick).
"H.264 alone" is the same mountpoint joined without audio (the join answers
the audio m-line inactive, so Janus sends none); "H.264 + Opus" takes both,
as a viewer of a live show does: the probe taps the audio packets, the
decoding viewer decodes the audio too. Each measurement runs in its own
worker process pinned to one core, so CPU time (getrusage, all threads) is
that viewer's alone. The per-stream cost is measured with both viewers at
the same number of streams, one after the other, three times over; the
figures are the medians, and the ratio of each pair is printed too (how
far one run's ratio can stray on a noisy machine).

"Not falling behind" for N streams: every stream's mean frame rate over the
window >= 90 % of the clip's (25 fps) and its per-second samples on time
(at most 5 % of the expected samples missing). Each ramp step also says
where packets went missing when a step falls behind: datagrams the kernel
dropped at the probe's own sockets (receive buffer full: the probe process
did not read in time), path loss the probe measured (packets Janus numbered
but the probe never got), how late the probe's event loop ran (a 5 ms timer's
lateness, 99th percentile and worst), and the CPU Janus used meanwhile.

    sudo python bench/probe_cost.py [--quick]

Prints the figures; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CLIP_KBPS = 1000
HD_KBPS = 2500
SD_SIZE = "640x360"
HD_SIZE = "1280x720"
FPS = 25
LAG_TICK_S = 0.005


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system) of another process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LoopLag:
    """How late a 5 ms timer fires: the event loop's scheduling delay."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.recording = False

    async def run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(LAG_TICK_S)
            if self.recording and len(self.lags_ms) < 100_000:
                self.lags_ms.append(max(0.0, (time.monotonic() - t - LAG_TICK_S) * 1000))

    def figures(self) -> dict[str, float]:
        if not self.lags_ms:
            return {}
        lags = sorted(self.lags_ms)
        return {"loop_lag_p99_ms": lags[int(0.99 * (len(lags) - 1))],
                "loop_lag_max_ms": lags[-1]}


class Window:
    """CPU, wall time, own socket drops and Janus's CPU at the window's ends."""

    def __init__(self, janus_pid: int) -> None:
        self.janus_pid = janus_pid
        self.start = self._read()

    def _read(self) -> tuple[float, float, int | None, float]:
        # The probe's own reading of the kernel's drop counters (the one
        # the samples' socket_drops come from), over the whole process.
        from probes.starvation import own_udp_drops

        return cpu_s(), time.monotonic(), own_udp_drops(), process_cpu_s(self.janus_pid)

    def close(self) -> dict[str, Any]:
        c1, t1, d1, j1 = self._read()
        c0, t0, d0, j0 = self.start
        wall = t1 - t0
        return {"wall_s": wall, "cpu_pct": 100 * (c1 - c0) / wall,
                "socket_drops": None if d0 is None or d1 is None else d1 - d0,
                "janus_cpu_pct": 100 * (j1 - j0) / wall}


async def probe_worker(args: argparse.Namespace) -> dict[str, float]:
    from probes.agent import ProbeAgent
    from probes.config import ProbeConfig
    from probes.sinks import MemorySink

    cfg = ProbeConfig.model_validate({
        "labels": {"probe_id": "bench", "region": "lab"},
        "ice_host_addresses": [args.host],
        "streams": [{"show_id": "bench", "stream_id": f"s{i}", "join": "janus",
                     "url": args.janus, "mountpoint": args.mountpoint, "chat": False,
                     "audio": args.audio}
                    for i in range(args.n)],
        "join_timeout_s": 30,
    })
    sink = MemorySink()
    stop = asyncio.Event()
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run()) if args.lag else None
    task = asyncio.create_task(ProbeAgent(cfg, sink).run(stop))
    await asyncio.sleep(args.warmup)
    n0 = len(sink.samples)
    window = Window(args.janus_pid)
    lag.recording = True
    await asyncio.sleep(args.seconds)
    lag.recording = False
    n1 = len(sink.samples)
    figures = window.close()
    samples = sink.samples[n0:n1]
    stop.set()
    await asyncio.wait_for(task, 30)
    if lag_task is not None:
        lag_task.cancel()
    per_stream: dict[str, list[float]] = {}
    for s in samples:
        per_stream.setdefault(s.stream_id, []).append(s.fps or 0.0)
    fps_means = [sum(v) / len(v) for v in per_stream.values()] or [0.0]
    expected = sum(s.packets_expected for s in samples)
    received = sum(s.packets_received for s in samples)
    return {
        "n": args.n,
        **figures,
        "min_stream_fps": min(fps_means) if len(per_stream) == args.n else 0.0,
        "samples_ratio": len(samples) / (args.n * figures["wall_s"]),
        "kbps_mean": sum(s.bitrate_kbps or 0 for s in samples) / max(1, len(samples)),
        "audio_kbps_mean": sum(s.audio_kbps or 0 for s in samples) / max(1, len(samples)),
        "path_loss_pct": 100 * (expected - received) / expected if expected else 0.0,
        # The same drops as the samples tell them, stream by stream (to set
        # against the process-wide count of the window).
        "sample_socket_drops": sum(s.socket_drops or 0 for s in samples),
        "sample_probe_lag_max_ms": max((s.probe_lag_ms or 0.0 for s in samples), default=0.0),
        **lag.figures(),
    }


async def decoding_worker(args: argparse.Namespace) -> dict[str, float]:
    """A plain aiortc viewer: same signalling, aiortc decodes every frame,
    of the audio too when the stream has it."""
    import aiohttp
    from aiortc import RTCConfiguration, RTCRtpReceiver
    from aiortc.mediastreams import MediaStreamError

    from probes.config import StreamTarget
    from probes.ice_host_pin import pin_host_addresses
    from probes.joins.base import JoinHooks
    from probes.joins.janus import JanusJoiner

    pin_host_addresses([args.host])
    frames = [0] * args.n
    audio_frames = [0] * args.n
    joined = []

    async def drain(receiver: RTCRtpReceiver, counts: list[int], i: int) -> None:
        while True:
            try:
                await receiver.track.recv()
            except MediaStreamError:
                return
            counts[i] += 1

    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run()) if args.lag else None
    async with aiohttp.ClientSession() as http:
        tasks = []
        for i in range(args.n):
            target = StreamTarget(show_id="b", stream_id=f"d{i}", join="janus", url=args.janus,
                                  mountpoint=args.mountpoint, chat=False, audio=args.audio)
            video: list[RTCRtpReceiver] = []
            audio: list[RTCRtpReceiver] = []
            hooks = JoinHooks(rtc_config=RTCConfiguration(iceServers=[]),
                              on_receiver=video.append, on_chat_text=lambda t: None,
                              on_audio_receiver=audio.append if args.audio else None)
            joined.append(await JanusJoiner().join(target, http, hooks))
            tasks.append(asyncio.create_task(drain(video[0], frames, i)))
            tasks.extend(asyncio.create_task(drain(a, audio_frames, i)) for a in audio)
        await asyncio.sleep(args.warmup)
        f0, a0 = list(frames), list(audio_frames)
        window = Window(args.janus_pid)
        lag.recording = True
        await asyncio.sleep(args.seconds)
        lag.recording = False
        f1, a1 = list(frames), list(audio_frames)
        figures = window.close()
        for j in joined:
            await j.close()
        for t in tasks:
            t.cancel()
    if lag_task is not None:
        lag_task.cancel()
    wall = figures["wall_s"]
    fps = [(b - a) / wall for a, b in zip(f0, f1, strict=True)]
    audio_fps = [(b - a) / wall for a, b in zip(a0, a1, strict=True)]
    return {"n": args.n, **figures, "min_stream_fps": min(fps),
            "min_audio_frames_per_s": min(audio_fps), "samples_ratio": 1.0,
            "kbps_mean": 0.0, "path_loss_pct": 0.0, **lag.figures()}


def run_worker(kind: str, n: int, stream: dict[str, Any], janus: dict[str, Any],
               seconds: float, core: int, lag: bool = False) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", kind, "--n", str(n),
           "--janus", janus["url"], "--host", janus["host"], "--janus-pid", str(janus["pid"]),
           "--seconds", str(seconds), "--warmup", str(4 + n * 0.15),
           "--mountpoint", str(stream["mountpoint"])]
    if stream["audio"]:
        cmd.append("--audio")
    if lag:
        cmd.append("--lag")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.sched_setaffinity(0, {core}))
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed: {proc.stderr[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def keeps_up(r: dict[str, float]) -> bool:
    return r["min_stream_fps"] >= 0.9 * FPS and r["samples_ratio"] >= 0.95


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="shorter windows, fewer steps")
    ap.add_argument("--worker", choices=["probe", "decoding"])
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--janus")
    ap.add_argument("--janus-pid", type=int, default=0)
    ap.add_argument("--host")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--mountpoint", type=int, default=1)
    ap.add_argument("--audio", action="store_true", help="take the stream's audio too")
    ap.add_argument("--lag", action="store_true",
                    help="time the event loop (its 5 ms timer costs CPU: not in cost runs)")
    args = ap.parse_args()
    if args.worker:
        fn = probe_worker if args.worker == "probe" else decoding_worker
        print(json.dumps(asyncio.run(fn(args))))
        return 0

    if os.geteuid() != 0:
        print("probe_cost: needs root (Janus runs in a network namespace)", file=sys.stderr)
        return 2
    from tests.janus_harness import (
        H264_HD_MOUNTPOINT,
        H264_MOUNTPOINT,
        MOUNTPOINT,
        VP8_HD_MOUNTPOINT,
        JanusNetns,
        encode_clip,
        encode_h264_clip,
    )

    seconds = 8.0 if args.quick else 15.0
    pairs = 3
    ramp = [50, 60] if args.quick else [10, 25, 40, 50, 60]
    hd_ramp = [30] if args.quick else [10, 20, 30]
    cores = sorted(os.sched_getaffinity(0))
    core = cores[-1]
    sd = {"size": SD_SIZE, "kbps": CLIP_KBPS, "n": 10, "ramp": ramp}
    # 4 decoding 720p streams are about half a core: the decoding viewer keeps up.
    hd = {"size": HD_SIZE, "kbps": HD_KBPS, "n": 4, "ramp": []}
    streams: dict[str, dict[str, Any]] = {
        "vp8": {"label": "VP8", "mountpoint": MOUNTPOINT, "audio": False, **sd},
        "h264": {"label": "H.264", "mountpoint": H264_MOUNTPOINT, "audio": False, **sd},
        "h264_opus": {"label": "H.264 + Opus", "mountpoint": H264_MOUNTPOINT, "audio": True,
                      **sd},
        "vp8_720p": {"label": "VP8", "mountpoint": VP8_HD_MOUNTPOINT, "audio": False, **hd},
        # One ramp step at 720p: 2.5 times the packets per stream of the 360p ramp.
        "h264_opus_720p": {"label": "H.264 + Opus", "mountpoint": H264_HD_MOUNTPOINT,
                           "audio": True, **hd, "ramp": hd_ramp},
    }
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = {(codec, size): enc(Path(tmp) / f"{codec}_{size}.{ext}", bitrate_kbps=kbps,
                                    size=size, fps=FPS)
                 for codec, enc, ext in (("vp8", encode_clip, "webm"),
                                         ("h264", encode_h264_clip, "ts"))
                 for size, kbps in ((SD_SIZE, CLIP_KBPS), (HD_SIZE, HD_KBPS))}
        with JanusNetns() as janus:
            janus.start_feed(clips["vp8", SD_SIZE])
            janus.start_h264_feed(clips["h264", SD_SIZE], audio=True)
            janus.start_feed(clips["vp8", HD_SIZE], mountpoint=VP8_HD_MOUNTPOINT)
            janus.start_h264_feed(clips["h264", HD_SIZE], audio=True,
                                  mountpoint=H264_HD_MOUNTPOINT)
            time.sleep(1)
            assert janus.janus is not None
            where = {"url": janus.api_url, "host": janus.root_ip, "pid": janus.janus.pid}
            print(f"Janus {janus.api_url}, clips {CLIP_KBPS} kbps {SD_SIZE} and {HD_KBPS} kbps"
                  f" {HD_SIZE}, {FPS} fps (+ 48 kbps Opus); workers pinned to core {core};"
                  f" window {seconds:g} s, {pairs} runs of each viewer")
            for key, stream in streams.items():
                figures[key] = measure(stream, where, seconds, core, pairs)
    print()
    print(f"{'stream':<14}{'resolution':>11}{'kbps':>6}{'streams':>8}{'probe % / stream':>18}"
          f"{'decoding viewer':>17}{'its min fps':>12}{'ratio':>8}{'streams held':>14}")
    capped = False
    for key, stream in streams.items():
        f = figures[key]
        # A decoding viewer below the clip's frame rate did not decode every
        # frame: its CPU is less than decoding all would cost.
        mark = " " if f["decoding_viewer_keeps_up"] else ">"
        capped |= not f["decoding_viewer_keeps_up"]
        held = (f"{f['streams_per_process']:>8} of {f['streams_tried_max']}"
                if "streams_per_process" in f else f"{'-':>14}")
        print(f"{stream['label']:<14}{stream['size']:>11}{stream['kbps']:>6}{stream['n']:>8}"
              f"{f['probe_cpu_pct_per_stream']:>18.3f}"
              f"{f['decoding_viewer_cpu_pct_per_stream']:>17.3f}"
              f"{f['decoding_viewer_min_fps']:>12.1f}{mark:>2}{f['cost_ratio']:>5.1f}x{held}")
    if capped:
        print(f"> the decoding viewer fell below 90 % of {FPS} fps: its CPU figure is capped"
              " by the one core it had, the ratio is understated (a lower bound)")
    sd_keys = ("vp8", "h264", "h264_opus")
    hd_keys = ("vp8_720p", "h264_opus_720p")
    vp8_f, h264_f = figures["vp8"], figures["h264"]
    out = {
        **vp8_f,  # the VP8 figures under their old names
        "h264": h264_f,
        "h264_opus": figures["h264_opus"],
        "vp8_720p": figures["vp8_720p"],
        "h264_opus_720p": figures["h264_opus_720p"],
        "h264_vs_vp8_probe_cpu": round(h264_f["probe_cpu_pct_per_stream"]
                                       / vp8_f["probe_cpu_pct_per_stream"], 2),
        "min_cost_ratio": min(figures[k]["cost_ratio"] for k in sd_keys),
        "min_cost_ratio_720p": min(figures[k]["cost_ratio"] for k in hd_keys),
        "decoding_viewer_capped_720p": any(not figures[k]["decoding_viewer_keeps_up"]
                                           for k in hd_keys),
        "min_streams_per_process": min(figures[k]["streams_per_process"] for k in sd_keys),
        "streams_per_process_720p": figures["h264_opus_720p"]["streams_per_process"],
        "stream_kbps": CLIP_KBPS,
        "stream_kbps_720p": HD_KBPS,
        "window_s": seconds,
        "per_stream_n": sd["n"],
        "per_stream_n_720p": hd["n"],
        "runs_per_viewer": pairs,
    }
    print(json.dumps(out))
    return 0


def _ramp_line(n: int, r: dict[str, float], ok: bool) -> str:
    return (f"    {n:>3} streams: CPU {r['cpu_pct']:5.1f} %, min fps {r['min_stream_fps']:4.1f},"
            f" samples {100 * r['samples_ratio']:5.1f} %, {r['kbps_mean']:.0f} kbps,"
            f" path loss {r['path_loss_pct']:.2f} %, socket drops {_count(r['socket_drops'])},"
            f" loop lag p99 {r['loop_lag_p99_ms']:.1f} / max {r['loop_lag_max_ms']:.0f} ms,"
            f" Janus {r['janus_cpu_pct']:.0f} % -> {'keeps up' if ok else 'behind'}")


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median CPU (its other figures with it)."""
    return sorted(runs, key=lambda r: r["cpu_pct"])[len(runs) // 2]


def _count(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.0f}"


def measure(stream: dict[str, Any], janus: dict[str, Any], seconds: float,
            core: int, pairs: int) -> dict[str, Any]:
    n = stream["n"]
    # Probe and decoding viewer one after the other, ``pairs`` times: each
    # ratio is of two runs seconds apart (these machines drift), and the
    # figures are the medians.
    probes, decs = [], []
    for _ in range(pairs):
        probes.append(run_worker("probe", n, stream, janus, seconds, core))
        decs.append(run_worker("decoding", n, stream, janus, seconds, core))
    probe = _median_run(probes)
    dec = _median_run(decs)
    probe_pct = probe["cpu_pct"] / n
    dec_pct = dec["cpu_pct"] / n
    pair_ratios = [d["cpu_pct"] / p["cpu_pct"] for p, d in zip(probes, decs, strict=True)]
    dec_keeps_up = all(d["min_stream_fps"] >= 0.9 * FPS for d in decs)
    print(f"{stream['label']}, {stream['size']} {stream['kbps']} kbps:")
    print(f"  {'viewer (median of ' + str(pairs) + ' runs)':<28}{'streams':>8}{'CPU %':>8}"
          f"{'% / stream':>12}{'min fps':>9}")
    print(f"  {'probe (no decoding)':<28}{n:>8}{probe['cpu_pct']:>8.1f}"
          f"{probe_pct:>12.3f}{probe['min_stream_fps']:>9.1f}")
    print(f"  {'aiortc viewer, decoding':<28}{n:>8}{dec['cpu_pct']:>8.1f}"
          f"{dec_pct:>12.3f}{dec['min_stream_fps']:>9.1f}")
    print(f"  cost ratio (decoding / probe): {dec_pct / probe_pct:.1f}x"
          f" (pair by pair: {', '.join(f'{r:.2f}' for r in pair_ratios)})"
          + ("" if dec_keeps_up else " (at least: the decoding viewer fell behind)"))
    result: dict[str, Any] = {
        "probe_cpu_pct_per_stream": round(probe_pct, 3),
        "decoding_viewer_cpu_pct_per_stream": round(dec_pct, 3),
        "cost_ratio": round(dec_pct / probe_pct, 2),
        "cost_ratio_pairs": [round(r, 2) for r in pair_ratios],
        "probe_min_fps": round(probe["min_stream_fps"], 2),
        "decoding_viewer_min_fps": round(dec["min_stream_fps"], 2),
        "decoding_viewer_keeps_up": dec_keeps_up,
        "resolution": stream["size"],
        "stream_kbps": stream["kbps"],
        "per_stream_n": n,
    }
    if not stream["ramp"]:
        return result
    print("  ramp, one probe process on one core:")
    held = 0
    steps = []
    for n in stream["ramp"]:
        r = run_worker("probe", n, stream, janus, seconds, core, lag=True)
        ok = keeps_up(r)
        print(_ramp_line(n, r, ok))
        steps.append({"n": n, "keeps_up": ok, **{k: v if v is None else round(v, 3)
                                                  for k, v in r.items() if k != "n"}})
        if not ok:
            break
        held = n
    return {**result, "streams_per_process": held, "streams_tried_max": stream["ramp"][-1],
            "ramp": steps}


if __name__ == "__main__":
    sys.exit(main())
