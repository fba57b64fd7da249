"""What a probe costs: CPU per watched stream, side by side with a plain
aiortc viewer that decodes, and how many 1 Mbps streams one probe process
holds on one core without falling behind; for VP8 and for H.264.

Runs a real Janus in a network namespace (tests/janus_harness.py; needs
root), two mountpoints fed by ffmpeg looping clips encoded once: 1 Mbps VP8,
and 1 Mbps H.264 (libx264 baseline, packetization mode 1). The H.264 feed
carries no Opus: the Janus join hands the probe only its video receiver, and
aiortc would decode an audio stream nobody taps. Each measurement runs in its
own worker process pinned to one core, so CPU time (getrusage, all threads)
is that viewer's alone.

"Not falling behind" for N streams: every stream's mean frame rate over the
window >= 90 % of the clip's (25 fps) and its per-second samples on time
(at most 5 % of the expected samples missing).

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CLIP_KBPS = 1000
FPS = 25


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def probe_worker(args: argparse.Namespace) -> dict[str, float]:
    from probes.agent import ProbeAgent
    from probes.config import ProbeConfig
    from probes.sinks import MemorySink

    cfg = ProbeConfig.model_validate({
        "labels": {"probe_id": "bench", "region": "lab"},
        "ice_host_addresses": [args.host],
        "streams": [{"show_id": "bench", "stream_id": f"s{i}", "join": "janus",
                     "url": args.janus, "mountpoint": args.mountpoint, "chat": False}
                    for i in range(args.n)],
        "join_timeout_s": 30,
    })
    sink = MemorySink()
    stop = asyncio.Event()
    task = asyncio.create_task(ProbeAgent(cfg, sink).run(stop))
    await asyncio.sleep(args.warmup)
    n0, c0, t0 = len(sink.samples), cpu_s(), time.monotonic()
    await asyncio.sleep(args.seconds)
    n1, c1, t1 = len(sink.samples), cpu_s(), time.monotonic()
    window = sink.samples[n0:n1]
    stop.set()
    await asyncio.wait_for(task, 30)
    per_stream: dict[str, list[float]] = {}
    for s in window:
        per_stream.setdefault(s.stream_id, []).append(s.fps or 0.0)
    fps_means = [sum(v) / len(v) for v in per_stream.values()] or [0.0]
    wall = t1 - t0
    return {
        "n": args.n,
        "cpu_pct": 100 * (c1 - c0) / wall,
        "min_stream_fps": min(fps_means) if len(per_stream) == args.n else 0.0,
        "samples_ratio": len(window) / (args.n * wall),
        "kbps_mean": sum(s.bitrate_kbps or 0 for s in window) / max(1, len(window)),
    }


async def decoding_worker(args: argparse.Namespace) -> dict[str, float]:
    """A plain aiortc viewer: same signalling, aiortc decodes every frame."""
    import aiohttp
    from aiortc import RTCConfiguration
    from aiortc.mediastreams import MediaStreamError

    from probes.config import StreamTarget
    from probes.ice_host_pin import pin_host_addresses
    from probes.joins.base import JoinHooks
    from probes.joins.janus import JanusJoiner

    pin_host_addresses([args.host])
    frames = [0] * args.n
    receivers = []
    joined = []

    async def drain(i: int, receiver) -> None:  # type: ignore[no-untyped-def]
        while True:
            try:
                await receiver.track.recv()
            except MediaStreamError:
                return
            frames[i] += 1

    async with aiohttp.ClientSession() as http:
        tasks = []
        for i in range(args.n):
            target = StreamTarget(show_id="b", stream_id=f"d{i}", join="janus", url=args.janus,
                                  mountpoint=args.mountpoint, chat=False)
            got: list = []
            hooks = JoinHooks(rtc_config=RTCConfiguration(iceServers=[]),
                              on_receiver=got.append, on_chat_text=lambda t: None)
            joined.append(await JanusJoiner().join(target, http, hooks))
            receivers.append(got[0])
            tasks.append(asyncio.create_task(drain(i, got[0])))
        await asyncio.sleep(args.warmup)
        f0, c0, t0 = list(frames), cpu_s(), time.monotonic()
        await asyncio.sleep(args.seconds)
        f1, c1, t1 = list(frames), cpu_s(), time.monotonic()
        for j in joined:
            await j.close()
        for t in tasks:
            t.cancel()
    wall = t1 - t0
    fps = [(b - a) / wall for a, b in zip(f0, f1, strict=True)]
    return {"n": args.n, "cpu_pct": 100 * (c1 - c0) / wall, "min_stream_fps": min(fps),
            "samples_ratio": 1.0, "kbps_mean": 0.0}


def run_worker(kind: str, n: int, janus_url: str, host: str, seconds: float,
               core: int, mountpoint: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", kind, "--n", str(n), "--janus", janus_url,
           "--host", host, "--seconds", str(seconds), "--warmup", str(4 + n * 0.15),
           "--mountpoint", str(mountpoint)]
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
    ap.add_argument("--host")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--mountpoint", type=int, default=1)
    args = ap.parse_args()
    if args.worker:
        fn = probe_worker if args.worker == "probe" else decoding_worker
        print(json.dumps(asyncio.run(fn(args))))
        return 0

    if os.geteuid() != 0:
        print("probe_cost: needs root (Janus runs in a network namespace)", file=sys.stderr)
        return 2
    from tests.janus_harness import (
        H264_MOUNTPOINT,
        MOUNTPOINT,
        JanusNetns,
        encode_clip,
        encode_h264_clip,
    )

    seconds = 6.0 if args.quick else 12.0
    per_stream_n = 5 if args.quick else 10
    ramp = [10, 25, 50] if args.quick else [10, 25, 40, 50, 60]
    cores = sorted(os.sched_getaffinity(0))
    core = cores[-1]
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        vp8 = encode_clip(Path(tmp) / "clip.webm", bitrate_kbps=CLIP_KBPS)
        h264 = encode_h264_clip(Path(tmp) / "clip.ts", bitrate_kbps=CLIP_KBPS)
        with JanusNetns() as janus:
            janus.start_feed(vp8)
            janus.start_h264_feed(h264, audio=False)
            time.sleep(1)
            print(f"Janus {janus.api_url}, clips {CLIP_KBPS} kbps 640x360 {FPS} fps; "
                  f"workers pinned to core {core}; window {seconds:g} s")
            for codec, mountpoint in (("vp8", MOUNTPOINT), ("h264", H264_MOUNTPOINT)):
                figures[codec] = measure(codec, mountpoint, janus.api_url, janus.root_ip,
                                         seconds, core, per_stream_n, ramp)
    vp8_f, h264_f = figures["vp8"], figures["h264"]
    assert isinstance(vp8_f, dict) and isinstance(h264_f, dict)
    out = {
        **vp8_f,  # the VP8 figures under their old names
        "h264": h264_f,
        "h264_vs_vp8_probe_cpu": round(h264_f["probe_cpu_pct_per_stream"]
                                       / vp8_f["probe_cpu_pct_per_stream"], 2),
        "stream_kbps": CLIP_KBPS,
        "window_s": seconds,
    }
    print(json.dumps(out))
    return 0


def measure(codec: str, mountpoint: int, url: str, host: str, seconds: float, core: int,
            per_stream_n: int, ramp: list[int]) -> dict[str, float]:
    probe = run_worker("probe", per_stream_n, url, host, seconds, core, mountpoint)
    dec = run_worker("decoding", per_stream_n, url, host, seconds, core, mountpoint)
    probe_pct = probe["cpu_pct"] / per_stream_n
    dec_pct = dec["cpu_pct"] / per_stream_n
    print(f"{codec.upper()}:")
    print(f"  {'viewer':<28}{'streams':>8}{'CPU %':>8}{'% / stream':>12}{'min fps':>9}")
    print(f"  {'probe (no decoding)':<28}{per_stream_n:>8}{probe['cpu_pct']:>8.1f}"
          f"{probe_pct:>12.2f}{probe['min_stream_fps']:>9.1f}")
    print(f"  {'aiortc viewer, decoding':<28}{per_stream_n:>8}{dec['cpu_pct']:>8.1f}"
          f"{dec_pct:>12.2f}{dec['min_stream_fps']:>9.1f}")
    print(f"  cost ratio (decoding / probe): {dec_pct / probe_pct:.1f}x")
    print("  ramp, one probe process on one core:")
    held = 0
    for n in ramp:
        r = run_worker("probe", n, url, host, seconds, core, mountpoint)
        ok = keeps_up(r)
        print(f"    {n:>3} streams: CPU {r['cpu_pct']:5.1f} %, min stream fps "
              f"{r['min_stream_fps']:4.1f}, samples on time {100 * r['samples_ratio']:5.1f}"
              f" %, mean {r['kbps_mean']:.0f} kbps -> {'keeps up' if ok else 'behind'}")
        if not ok:
            break
        held = n
    return {
        "probe_cpu_pct_per_stream": round(probe_pct, 3),
        "decoding_viewer_cpu_pct_per_stream": round(dec_pct, 3),
        "cost_ratio": round(dec_pct / probe_pct, 2),
        "streams_per_process": held,
        "streams_tried_max": ramp[-1],
    }


if __name__ == "__main__":
    sys.exit(main())
