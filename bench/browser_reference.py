"""The probe next to a reference browser, on a libwebrtc sender, under known
impairments: which of the probe's figures agree with ground truth and with
what Chromium reports, and by how much. The set-up is described in
tests/reference_viewer.py (needs root: network namespaces, nftables, tc).

Phases: clean, 5 % and 15 % random loss, a 600 kbit/s squeeze; each for
``--phase`` seconds plus 6 s clean, counted as one window.

    sudo python bench/browser_reference.py [--codec h264|vp8] [--phase 20] [--quick]

Prints the figures of each phase; the last line is one JSON object.
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

from tests.reference_viewer import PHASES, compare


def show(name: str, f: dict[str, Any]) -> None:
    print(f"{name}: loss probe {f['probe_loss_pct']} % / truth {f['truth_loss_pct_probe_path']} %,"
          f" browser {f['browser_loss_pct']} % / truth {f['truth_loss_pct_browser_path']} %;"
          f" kbps probe {f['probe_bitrate_kbps']} (sender {f['sender_kbps_to_probe']}),"
          f" browser {f['browser_kbps']} (sender {f['sender_kbps_to_browser']});"
          f" fps probe {f['probe_fps']} browser {f['browser_fps']};"
          f" frozen s probe {f['probe_frozen_s']} browser {f['browser_frozen_s']}")
    print(json.dumps({name: f}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codec", choices=("h264", "vp8"), default="h264")
    p.add_argument("--phase", type=float, default=20.0, help="seconds of each impairment")
    p.add_argument("--quick", action="store_true", help="clean, 5 %% and 15 %% loss only")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, nftables, tc)")
    phases = PHASES[:3] if args.quick else PHASES
    result = asyncio.run(compare(args.codec, args.phase, phases, show))
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
