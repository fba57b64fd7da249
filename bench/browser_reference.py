"""The probe next to a reference browser, on a libwebrtc sender or on Janus
(H.264 + Opus mountpoint fed by ffmpeg), under known impairments: which of
the probe's figures agree with ground truth and with what Chromium reports,
and by how much. The set-up is described in tests/reference_viewer.py (needs
root: network namespaces, nftables, tc).

Phases: clean, 5 % and 15 % random loss, a squeeze (600 kbit/s on Janus,
300 on the libwebrtc sender: 60 % of its cap), 15 % loss of the audio
packets only; each for ``--phase`` seconds plus 6 s clean,
counted as one window.

    sudo python bench/browser_reference.py [--origin libwebrtc|janus]
        [--codec h264|vp8] [--phase 20] [--quick] [--repeat N] [--control]

Prints the figures of each phase and every target of the definition of done
that applies to it, PASS or MISS; the last line is one JSON object.

``--repeat N`` runs all the phases N times over in one session and holds
the mean of each phase's N windows against the targets, saying also how
many windows met each target on their own. Under random loss each viewer
loses its own packets, so one window's frozen time (and, on the libwebrtc
sender, its rate) differs between two viewers by about as much as the
targets allow; the mean of several windows is what can tell a probe that
reads high or low from one that met an unlucky window.

``--control`` puts a second Chromium viewer where the probe was, and prints
how far apart the two browsers' received rate, frame rate and frozen time
are in each phase, and whether browser "a" would meet the probe's targets
against browser "b": the spread of the reference itself. On the libwebrtc
sender each viewer also has a session and a congestion controller of its
own, so their rates differ under loss even between two browsers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reference_viewer import ORIGINS, compare, control, phases_for


def show(name: str, f: dict[str, Any]) -> None:
    print(f"{name}: loss probe {f['probe_loss_pct']} % / truth {f['truth_loss_pct_probe_path']} %,"
          f" browser {f['browser_loss_pct']} % / truth {f['truth_loss_pct_browser_path']} %;"
          f" received kbps probe {f['probe_received_kbps']} (rtx {f['probe_rtx_kbps']},"
          f" sender {f['sender_kbps_to_probe']}), browser {f['browser_kbps']}"
          f" (rtx {f['browser_rtx_kbps']}, sender {f['sender_kbps_to_browser']});"
          f" sender target kbps probe {f['sender_target_kbps_probe']}"
          f" browser {f['sender_target_kbps_browser']}, loss in their receiver reports"
          f" probe {f['rr_loss_pct_probe']} % browser {f['rr_loss_pct_browser']} %;"
          f" fps probe {f['probe_fps']} browser {f['browser_fps']};"
          f" frozen s probe {f['probe_frozen_s']} browser {f['browser_frozen_s']};"
          f" audio loss probe {f['probe_audio_loss_pct']} % browser"
          f" {f['browser_audio_loss_pct']} % truth {f.get('truth_audio_loss_pct_probe_path')} %")
    for key, v in f["verdicts"].items():
        print(f"  {'PASS' if v['pass'] else 'MISS'} {name} {key} = {v['value']}"
              f" (target {v['target']})")
    print(json.dumps({name: f}))


def show_control(name: str, f: dict[str, Any]) -> None:
    met = ", ".join(f"{k} {'met' if ok else 'missed'}" for k, ok in f["targets_met"].items())
    print(f"{name}: received kbps {f['a_kbps']} / {f['b_kbps']} ({f['kbps_a_vs_b_pct']} %),"
          f" fps {f['a_fps']} / {f['b_fps']} ({f['fps_a_vs_b_pct']} %),"
          f" frozen s {f['a_frozen_s']} / {f['b_frozen_s']}, path loss"
          f" {f['truth_loss_pct_a_path']} / {f['truth_loss_pct_b_path']} %; a against b: {met}")
    print(json.dumps({name: f}))


def show_means(result: dict[str, Any]) -> None:
    """Each phase's means over its windows (``--repeat``)."""
    n = result["repeat"]
    for name, f in result["phases"].items():
        if result.get("control"):
            print(f"mean of {n} {name}: kbps a vs b {f['kbps_a_vs_b_pct']} %, fps a vs b"
                  f" {f['fps_a_vs_b_pct']} %, frozen s {f['a_frozen_s']} / {f['b_frozen_s']};"
                  f" windows where a met the targets against b: {f['windows_met']} of {n}")
            continue
        print(f"mean of {n} {name}: kbps probe vs browser {f['probe_vs_browser_kbps_pct']} %,"
              f" fps {f['probe_vs_browser_fps_pct']} %, frozen s probe {f['probe_frozen_s']}"
              f" browser {f['browser_frozen_s']}, path loss error {f['probe_loss_error_pp']} pp")
        for key, v in f["verdicts"].items():
            print(f"  {'PASS' if v['pass'] else 'MISS'} {name} {key} = {v['value']}"
                  f" (target {v['target']}; {f['window_passes'][key]} of {n} windows alone)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--origin", choices=ORIGINS, default="libwebrtc")
    p.add_argument("--codec", choices=("h264", "vp8"), default="h264",
                   help="libwebrtc origin only (Janus's mountpoint is H.264)")
    p.add_argument("--phase", type=float, default=20.0, help="seconds of each impairment")
    p.add_argument("--quick", action="store_true", help="clean, 5 %% and 15 %% loss only")
    p.add_argument("--repeat", type=int, default=1,
                   help="run the phases this many times over and judge their means")
    p.add_argument("--control", action="store_true",
                   help="two browsers instead of the probe and a browser")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, nftables, tc)")
    if not 1 <= args.repeat <= 20:
        raise SystemExit("--repeat: 1 to 20")
    phases = phases_for(args.origin)
    if args.quick:
        phases = phases[:3]
    if args.control:
        result = asyncio.run(control(args.origin, args.codec, args.phase, phases, show_control,
                                     args.repeat))
        if args.repeat > 1:
            show_means(result)
        print(json.dumps(result, separators=(",", ":")))
        return
    result = asyncio.run(compare(args.origin, args.codec, args.phase, phases, show,
                                 args.repeat))
    if args.repeat > 1:
        show_means(result)
    verdicts = [(n, k, v["pass"]) for n, f in result["phases"].items()
                for k, v in f["verdicts"].items()]
    result["passed"] = sum(ok for _, _, ok in verdicts)
    result["missed"] = [f"{n}.{k}" for n, k, ok in verdicts if not ok]
    print(f"{result['passed']} PASS, {len(result['missed'])} MISS: {result['missed']}")
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
