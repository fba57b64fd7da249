"""What the platform's player reports cost the live loop.

A 10-minute show with a bandwidth fault in one region (the synthetic
generator) while the platform sends ``--slices`` audience slices (region x
ISP x CDN x device x app version) every minute, one ISP of the faulty region
failing 6x as often after the onset. The engine is fed as the live pipeline
feeds it on the collector's event loop: reports added on arrival, ``step``
and ``incidents`` once a second. Each call is timed (building the reports is
not): the longest and 99th-percentile step, the seconds the loop spent on
arrivals and on steps, and whether the incident names the failing slice.

With ``--baseline DIR`` (an older checkout) the same run is made in a
subprocess importing ``qosmon`` from DIR, and the figures are printed side
by side with their ratios. The last line is one JSON object.

    PYTHONPATH=. python bench/viewer_evidence.py [--slices 120000] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# The tree to measure: this one, or the one the parent run names.
sys.path.insert(0, os.environ.get("BENCH_TREE") or str(Path(__file__).resolve().parent.parent))

from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.model import Cause, ViewerAggregate
from tests.synthetic_shows import Scenario, generate

REGIONS = ["ID", "TH", "US", "DE"]


def _batch(show_id: str, ts: float, slices: int, bad: bool,
           rng: np.random.Generator) -> list[ViewerAggregate]:
    isps, cdns, devices = 10, 5, 6
    versions = max(1, slices // (len(REGIONS) * isps * cdns * devices))
    n = len(REGIONS) * isps * cdns * devices * versions
    idx = np.arange(n)
    r, rest = idx % len(REGIONS), idx // len(REGIONS)
    i, rest = rest % isps, rest // isps
    c, rest = rest % cdns, rest // cdns
    d, v = rest % devices, rest // devices
    sessions = rng.poisson(rng.lognormal(2.5, 1.0, n)).astype(np.int64)
    rate = np.where(bad & (r == REGIONS.index("TH")) & (i == 3), 0.06, 0.01)
    failures = rng.binomial(sessions, rate)
    watched = sessions * 50.0
    stalled = watched * 0.004 * rng.lognormal(0, 0.1, n)
    return [
        ViewerAggregate.model_construct(
            ts=ts, show_id=show_id, interval_s=60.0, region=REGIONS[r[k]], isp=f"isp-{i[k]}",
            cdn=f"cdn-{c[k]}", device=f"dev-{d[k]}", app_version=f"v{v[k]}",
            sessions=int(sessions[k]), failures=int(failures[k]), watched_s=float(watched[k]),
            stalled_s=float(stalled[k]),
        )
        for k in range(n)
    ]


def run(slices: int) -> dict[str, object]:
    sc = Scenario("bw", Cause.BANDWIDTH, "TH", 1.0, seed=3, duration_s=600, onset_s=360,
                  fault_s=150)
    show, gen = generate(sc)
    rng = np.random.default_rng(5)
    engine = DiagnosisEngine(show)
    arrive: list[float] = []
    steps: list[float] = []
    sent = 0
    for k, sec in enumerate(gen):
        engine.add_probe_samples(x for _, x in sec.probes)
        engine.add_business(sec.business)
        engine.add_stock_states(sec.stock)
        if k and k % 60 == 0:
            batch = _batch(show.show_id, sec.ts, slices, sec.ts > sc.onset_ts + 5, rng)
            sent = len(batch)
            t0 = time.perf_counter()
            engine.add_viewer_aggregates(batch)
            arrive.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        engine.step(sec.ts + 3)
        engine.incidents  # noqa: B018 - the live pipeline reads them every tick
        steps.append(time.perf_counter() - t0)
    found = [
        e.text for i in engine.incidents if i.scope.get("region") == "TH"
        for e in i.evidence if e.metric == "failure_rate"
    ]
    return {
        "slices_per_batch": sent,
        "batches": len(arrive),
        "arrival_s_max": round(max(arrive), 4),
        "arrival_s_total": round(sum(arrive), 3),
        "step_s_max": round(max(steps), 4),
        "step_s_p99": round(float(np.percentile(steps, 99)), 4),
        "step_s_total": round(sum(steps), 3),
        "steps_over_100ms": sum(1 for s in steps if s > 0.1),
        "names_failing_slice": bool(found) and "isp isp-3" in found[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=120_000)
    ap.add_argument("--baseline", type=Path, help="an older tree to compare with")
    ap.add_argument("--run-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_only:
        print(json.dumps(run(args.slices)))
        return 0
    runs = {"current": run(args.slices)}
    if args.baseline:
        out = subprocess.run(
            [sys.executable, __file__, "--run-only", "--slices", str(args.slices)],
            env={**os.environ, "BENCH_TREE": str(args.baseline.resolve())},
            capture_output=True, text=True, check=True,
        )
        runs["baseline"] = json.loads(out.stdout.strip().splitlines()[-1])
    keys = list(runs["current"])
    print(f"{'':<22}" + "".join(f"{name:>14}" for name in runs))
    for k in keys:
        print(f"{k:<22}" + "".join(f"{r[k]!s:>14}" for r in runs.values()))
    figures: dict[str, object] = {
        f"{name}_{k}": v for name, r in runs.items() for k, v in r.items()
    }
    if "baseline" in runs:
        for k in ("arrival_s_total", "step_s_max", "step_s_total"):
            cur, base = runs["current"][k], runs["baseline"][k]
            assert isinstance(cur, float) and isinstance(base, float)
            figures[f"{k}_ratio_baseline_over_current"] = round(base / max(cur, 1e-6), 1)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
