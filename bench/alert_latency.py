"""Fault onset to on-call notification, with real impairments.

Runs short demo shows (real WebRTC probes through the userspace relays, the
collector, diagnosis and alerting, a local webhook) with one fault each, and
measures the time from the moment the relay starts impairing packets to the
moment the on-call webhook receives the firing alert. Clean shows (no fault)
count false alerts.

    python bench/alert_latency.py [--runs 4] [--clean 2] [--show-s 50]

Each fault run is split into stages, from the records the show leaves:

* ``onset_to_start``: relay impairing -> the start diagnosis dates the
  incident at (a probe must see the fault in its per-second measures, e.g.
  no frame for ``no_frame_s``);
* ``upload``: a sample's own second -> the collector receiving it (probe
  batching, median over the run's samples);
* ``start_to_detected``: that start -> the engine opening the incident
  (judging lag behind the wall clock, upload, per-probe min-bad and
  per-group confirmation seconds);
* ``detected_to_webhook``: the incident opening -> the on-call webhook
  receiving it (alert pending, group wait, the once-a-second tick, the
  HTTP delivery).

Target: p95 <= 6 s, zero false alerts. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qosmon.demo.scenario import FaultKind, FaultSpec, Scenario, load_scenario
from qosmon.demo.show import DemoResult, DemoShow
from qosmon.store import open_store

TARGET_P95_S = 6.0
STAGES = ("onset_to_start", "start_to_detected", "detected_to_webhook", "upload")

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


def oncall_firings(alerts: list[dict]) -> list[tuple[float, list[str]]]:
    """(received_ts, incident ids) of each firing notification on-call got."""
    out = []
    for entry in alerts:
        if entry["route"] != "oncall":
            continue
        payload = entry["payload"]
        alerts = payload.get("alerts", []) if isinstance(payload, dict) else []
        firing = [a for a in alerts if a.get("status") == "firing"]
        if firing:
            out.append((float(entry["received_ts"]), [str(a.get("incident_id")) for a in firing]))
    return out


def oncall_alert_texts(alerts: list[dict]) -> list[str]:
    """What each firing on-call alert said: cause, where, summary."""
    out = []
    for entry in alerts:
        payload = entry["payload"]
        if entry["route"] != "oncall" or not isinstance(payload, dict):
            continue
        for a in payload.get("alerts", []):
            if a.get("status") == "firing":
                out.append(f"{a.get('cause')} in {a.get('region') or '*'}"
                           f"/{a.get('node') or '*'}: {a.get('summary')}")
    return out


def upload_delay_s(result: DemoResult) -> float | None:
    """Median time from a sample's second to the collector receiving it."""
    store = open_store(f"sqlite:///{(result.out_dir / (result.show_id + '.db')).resolve()}")
    try:
        delays = [s.received_ts - s.ts for s in store.probe_samples(result.show_id)
                  if s.received_ts is not None]
    finally:
        store.close()
    return float(np.median(delays)) if delays else None


def stages(result: DemoResult, onset: float, notified_ts: float,
           incident_ids: list[str]) -> dict[str, float | None]:
    by_id = {i.incident_id: i for i in result.incidents}
    incs = [by_id[i] for i in incident_ids if i in by_id]
    out: dict[str, float | None] = dict.fromkeys(STAGES)
    if incs:
        first = min(incs, key=lambda i: i.detected_ts or i.start_ts)
        out["onset_to_start"] = first.start_ts - onset
        if first.detected_ts is not None:
            out["start_to_detected"] = first.detected_ts - first.start_ts
            out["detected_to_webhook"] = notified_ts - first.detected_ts
    out["upload"] = upload_delay_s(result)
    return out


def _fmt(v: float | None) -> str:
    return "   -" if v is None else f"{v:5.1f}"


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4, help="shows with one fault each")
    ap.add_argument("--clean", type=int, default=2, help="shows with no fault")
    ap.add_argument("--show-s", type=float, default=50.0)
    ap.add_argument("--fault-at-s", type=float, default=22.0)
    ap.add_argument("--first-run", type=int, default=0,
                    help="number of the first run (its seed is 100 + the number)")
    args = ap.parse_args()

    latencies: list[float] = []
    breakdown: dict[str, list[float]] = {k: [] for k in STAGES}
    missed = 0
    false_alerts = 0
    print("run  fault       region  notified  " + "  ".join(STAGES), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.first_run, args.first_run + args.runs + args.clean):
            clean = run >= args.first_run + args.runs
            sc = scenario_for(run, args.show_s, args.fault_at_s, clean)
            result = await DemoShow(sc, Path(tmp) / sc.show.id, echo=lambda _line: None).run()
            fired = oncall_firings(result.alerts)
            if clean:
                false_alerts += len(fired)
                print(f"clean run {run}: {len(fired)} on-call alerts", flush=True)
                for what in oncall_alert_texts(result.alerts):
                    print(f"  false alert: {what}", flush=True)
                continue
            onset = result.faults[0].start_ts
            after = [(t - onset, ids) for t, ids in fired if t >= onset]
            false_alerts += sum(1 for t, _ in fired if t < onset)
            kind = sc.faults[0].kind.value
            region = sc.faults[0].region or "*"
            if not after:
                missed += 1
                print(f"{run:<4} {kind:<11} {region:<7} NO on-call alert", flush=True)
                continue
            latency, ids = min(after)
            latencies.append(latency)
            st = stages(result, onset, onset + latency, ids)
            for k, v in st.items():
                if v is not None:
                    breakdown[k].append(v)
            print(f"{run:<4} {kind:<11} {region:<7} {latency:6.1f} s  "
                  + "  ".join(f"{_fmt(st[k]):>{len(k)}}" for k in STAGES), flush=True)

    arr = np.array(latencies)

    def stat(fn: Callable[[np.ndarray], float]) -> float | None:
        return round(float(fn(arr)), 2) if len(arr) else None  # JSON has no NaN

    figures: dict[str, object] = {
        "runs": args.runs,
        "clean_runs": args.clean,
        "p50_s": stat(lambda a: np.percentile(a, 50)),
        "p95_s": stat(lambda a: np.percentile(a, 95)),
        "max_s": stat(np.max),
        "missed": missed,
        "false_alerts": false_alerts,
    }
    for k, vals in breakdown.items():
        figures[f"{k}_median_s"] = round(float(np.median(vals)), 2) if vals else None
    print("median per stage: " + ", ".join(
        f"{k} {figures[f'{k}_median_s']} s" for k in STAGES))
    print(f"onset -> webhook: p50 {figures['p50_s']} s, p95 {figures['p95_s']} s "
          f"(target <= {TARGET_P95_S:g} s); missed {missed}; "
          f"false alerts {false_alerts} (target 0)")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
