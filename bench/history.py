"""How long ``qosmon history`` takes over many stored shows, and how big the
page gets.

200 shows of 2 h watched by 20 probes (4 regions), each with its summary in
an embedded store as the live pipeline leaves it when a show ends. A few of
them are really summarized from 144,000 raw samples each (the cost a show
pays once, at its end, printed as ``summarize_s``); the rest are copies of
those with their own ids, start times and incidents. Then ``qosmon history``
runs as a user would run it, in its own process. Targets: under 10 s and
under 5 MB. Last line one JSON object. Run ``python bench/history.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qosmon.history.summary import summarize_show  # noqa: E402
from qosmon.model import Cause  # noqa: E402
from qosmon.store.sqlite import SqliteStore  # noqa: E402
from tests.history_shows import make_show  # noqa: E402

TARGET_S = 10.0
TARGET_MB = 5.0
REGIONS = [("TH", "AIS", "bkk-1"), ("ID", "Telkomsel", "jkt-1"), ("DE", "Telekom", "fra-1"),
           ("US-W", "Comcast", "lax-1")]
CAUSES = [Cause.BANDWIDTH, Cause.PACKET_LOSS, Cause.NODE_FAILURE, Cause.CHAT_CHANNEL]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shows", type=int, default=200)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--real", type=int, default=3, help="shows summarized from raw samples")
    args = ap.parse_args()
    rng = random.Random(7)
    per_region = max(1, args.probes // len(REGIONS))
    probes = {f"{r.lower()}-{k}": (r, isp, node) for r, isp, node in REGIONS
              for k in range(per_region)}
    duration = int(args.hours * 3600)
    t0 = 1_780_000_000.0

    templates = []
    summarize_s = []
    for k in range(args.real):
        region = REGIONS[k % len(REGIONS)][0]
        bad = {region: (600.0, 900.0, CAUSES[k % len(CAUSES)], {"region": region})}
        data = make_show(f"real-{k}", t0, bad, probes=probes, duration_s=duration)
        t = time.perf_counter()
        templates.append(summarize_show(data, now=t0 + duration))
        summarize_s.append(time.perf_counter() - t)
        n_samples = len(data.probe_samples)
        del data

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "shows.db"
        store = SqliteStore(db)
        for i in range(args.shows):
            base = templates[i % len(templates)]
            start = t0 + i * 86400.0 / 2 + rng.uniform(0, 3600)
            shift = start - base.start_ts
            incidents = [
                inc.model_copy(update={
                    "incident_id": f"s{i}-{j}", "start_ts": inc.start_ts + shift,
                    "end_ts": inc.end_ts + shift, "cause": rng.choice(CAUSES),
                })
                for j, inc in enumerate(base.incidents * rng.randint(1, 3))
            ]
            regions = [r.model_copy(update={"score": round(rng.uniform(40, 100), 1)})
                       for r in base.regions]
            store.put_show_summary(base.model_copy(update={
                "show_id": f"show-{i:04d}", "title": f"Show {i}", "start_ts": start,
                "end_ts": start + duration, "incidents": incidents, "regions": regions,
            }))
        store.close()
        out = Path(tmp) / "reports"
        t = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "qosmon.cli", "history", "--store", f"sqlite:///{db}",
             "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600,
        )
        render_s = time.perf_counter() - t
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            return 1
        size_mb = ((out / "history.html").stat().st_size
                   + (out / "history.json").stat().st_size) / 1e6
    rows = [
        ("shows", f"{args.shows} x {args.hours:g} h x {len(probes)} probes "
                  f"({n_samples:,} samples a show)"),
        ("summarize one show at its end", f"{min(summarize_s):.2f} s (not part of history)"),
        ("qosmon history (own process)", f"{render_s:.2f} s (target < {TARGET_S:g} s) "
                                         f"{'ok' if render_s < TARGET_S else 'OVER'}"),
        ("history.html + history.json", f"{size_mb:.2f} MB (target < {TARGET_MB:g} MB) "
                                        f"{'ok' if size_mb < TARGET_MB else 'OVER'}"),
    ]
    for name, value in rows:
        print(f"{name:32s} {value}")
    print(json.dumps({"shows": args.shows, "render_s": round(render_s, 3),
                      "size_mb": round(size_mb, 3),
                      "summarize_s": round(min(summarize_s), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
