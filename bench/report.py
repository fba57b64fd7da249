"""How long a large show's report takes to render and how big it gets.

A generated 3-hour show watched by 50 probes at one sample per second
(540,000 probe samples), rendered as ``qosmon report`` would. Targets:
under 5 s and under 5 MB. Prints the figures side by side, then one JSON
line. Not a test: run ``python bench/report.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qosmon.report.output import write_report
from tests.sample_show import generate_show

TARGET_S = 5.0
TARGET_MB = 5.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--probes", type=int, default=50)
    ap.add_argument("--regions", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=2, help="renders to time (best kept)")
    ap.add_argument("--keep", type=Path, help="also write the report into this folder")
    args = ap.parse_args()
    if args.probes < args.regions or args.probes % args.regions:
        print("--probes must be a multiple of --regions", file=sys.stderr)
        return 2

    t = time.perf_counter()
    data = generate_show(
        duration_s=int(args.hours * 3600), n_regions=args.regions,
        probes_per_region=args.probes // args.regions, validate=False,
        title="Large show benchmark",
    )
    gen_s = time.perf_counter() - t

    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(max(1, args.repeat)):
            t = time.perf_counter()
            path = write_report(data, Path(tmp))
            times.append(time.perf_counter() - t)
        size_mb = path.stat().st_size / 1e6
    if args.keep:
        write_report(data, args.keep)
    render_s = min(times)
    rows = [
        ("show", f"{args.hours:g} h x {args.probes} probes, {len(data.probe_samples):,} samples"),
        ("generate (not timed)", f"{gen_s:.2f} s"),
        ("render + write", f"{render_s:.2f} s (target < {TARGET_S:g} s) "
                           f"{'ok' if render_s < TARGET_S else 'OVER'}"),
        ("all runs", ", ".join(f"{x:.2f} s" for x in times)),
        ("file size", f"{size_mb:.2f} MB (target < {TARGET_MB:g} MB) "
                      f"{'ok' if size_mb < TARGET_MB else 'OVER'}"),
    ]
    for name, value in rows:
        print(f"{name:<22} {value}")
    print(json.dumps({
        "samples": len(data.probe_samples), "hours": args.hours, "probes": args.probes,
        "render_s": round(render_s, 3), "render_first_s": round(times[0], 3),
        "size_mb": round(size_mb, 3),
        "target_s": TARGET_S, "target_mb": TARGET_MB,
        "ok": render_s < TARGET_S and size_mb < TARGET_MB,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
