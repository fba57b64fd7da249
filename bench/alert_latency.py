"""Fault onset to on-call notification, with real impairments.

Runs short demo shows (real WebRTC probes through the userspace relays, the
collector, diagnosis and alerting, a local webhook) with one fault each, and
measures the time from the moment the relay starts impairing packets to the
moment the on-call webhook receives the firing alert. Clean shows (no fault)
count false alerts.

    python bench/alert_latency.py [--runs 4] [--clean 2] [--show-s 50]

Target (issue 8): p95 <= 15 s, zero false alerts. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qosmon.demo.scenario import FaultKind, FaultSpec, Scenario, load_scenario
from qosmon.demo.show import DemoShow

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "demo-scenario.toml"

# Faults that should page on-call, rotated over regions.
FAULTS = [
    dict(kind=FaultKind.OUTAGE),
    dict(kind=FaultKind.BANDWIDTH, rate_kbps=300),
    dict(kind=FaultKind.LOSS, loss_pct=15),
    dict(kind=FaultKind.CHAT_STALL),
]


def scenario_for(run: int, show_s: float, fault_at_s: float, clean: bool) -> Scenario:
    sc = load_scenario(SHIPPED)
    sc.show.id = f"bench-alert-{'clean' if clean else 'fault'}-{run}"
    sc.show.duration_s = show_s
    sc.show.seed = 100 + run
    sc.skus = [s.model_copy(update={"on_screen": None}) for s in sc.skus]
    if clean:
        sc.faults = []
    else:
        region = sc.regions[run % len(sc.regions)].name
        spec = FAULTS[run % len(FAULTS)]
        sc.faults = [FaultSpec(at_s=fault_at_s, duration_s=show_s - fault_at_s - 10,
                               region=region, **spec)]
    return sc


def oncall_firing_times(alerts: list[dict]) -> list[float]:
    out = []
    for entry in alerts:
        if entry["route"] != "oncall":
            continue
        payload = entry["payload"]
        alerts = payload.get("alerts", []) if isinstance(payload, dict) else []
        if any(a.get("status") == "firing" for a in alerts):
            out.append(float(entry["received_ts"]))
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4, help="shows with one fault each")
    ap.add_argument("--clean", type=int, default=2, help="shows with no fault")
    ap.add_argument("--show-s", type=float, default=50.0)
    ap.add_argument("--fault-at-s", type=float, default=22.0)
    args = ap.parse_args()

    latencies: list[float] = []
    missed = 0
    false_alerts = 0
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs + args.clean):
            clean = run >= args.runs
            sc = scenario_for(run, args.show_s, args.fault_at_s, clean)
            result = await DemoShow(sc, Path(tmp) / sc.show.id, echo=lambda _line: None).run()
            fired = oncall_firing_times(result.alerts)
            if clean:
                false_alerts += len(fired)
                print(f"clean run {run}: {len(fired)} on-call alerts", flush=True)
                continue
            onset = result.faults[0].start_ts
            after = [t - onset for t in fired if t >= onset]
            before = [t for t in fired if t < onset]
            false_alerts += len(before)
            kind = sc.faults[0].kind.value
            if after:
                latencies.append(min(after))
                print(f"run {run}: {kind} in {sc.faults[0].region}: "
                      f"notified after {min(after):.1f} s", flush=True)
            else:
                missed += 1
                print(f"run {run}: {kind} in {sc.faults[0].region}: NO on-call alert", flush=True)

    arr = np.array(latencies) if latencies else np.array([float("nan")])
    figures = {
        "runs": args.runs,
        "clean_runs": args.clean,
        "p50_s": round(float(np.percentile(arr, 50)), 2),
        "p95_s": round(float(np.percentile(arr, 95)), 2),
        "max_s": round(float(arr.max()), 2),
        "missed": missed,
        "false_alerts": false_alerts,
    }
    print(f"onset -> webhook: p50 {figures['p50_s']} s, p95 {figures['p95_s']} s "
          f"(target <= 15 s); missed {missed}; false alerts {false_alerts} (target 0)")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
