"""Evaluate diagnosis on labelled synthetic shows.

Generates every cause in every region at two strengths and several seeds,
plus clean shows with only noise and audience swings, feeds each to the
engine online (samples arrive late and out of order, ``step`` once a second)
and prints cause accuracy, localization exact-match accuracy, time to detect
(from fault onset) and false incidents per clean show-hour, per cause and
overall, and the incidents raised when only the probes themselves were
starved (kernel drops at their sockets, a late loop: none should be). The
last line is one JSON object with the figures.

    PYTHONPATH=. python bench/diagnosis_eval.py [--seeds 2] [--clean 6]
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.model import Incident, ProbeSample
from tests.synthetic_shows import (
    Scenario,
    clean_shows,
    generate,
    new_figure_scenarios,
    scenarios,
    starved_scenarios,
)


def run(sc: Scenario) -> list[Incident]:
    show, seconds = generate(sc)
    engine = DiagnosisEngine(show)
    late: list[tuple[float, int, ProbeSample]] = []
    n = 0
    for sec in seconds:
        for arrive, x in sec.probes:
            heapq.heappush(late, (arrive, n, x))
            n += 1
        now = sec.ts + 1.0
        due = []
        while late and late[0][0] <= now:
            due.append(heapq.heappop(late)[2])
        engine.add_probe_samples(due)
        engine.add_business(sec.business)
        engine.add_stock_states(sec.stock)
        engine.step(now)
    for k in range(1, 30):  # let the last incidents close
        engine.step(sec.ts + 1.0 + k)
    return engine.incidents


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[i]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--clean", type=int, default=6, help="clean shows of 15 min")
    ap.add_argument("--verbose", action="store_true", help="print every miss")
    args = ap.parse_args()
    t0 = time.monotonic()
    classic = scenarios(seeds=args.seeds)
    faults = classic + new_figure_scenarios(seeds=args.seeds)
    per: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    ttds: list[float] = []
    extra = 0
    # The scenarios of earlier runs alone, so figures compare across versions.
    old: dict[str, list[float]] = defaultdict(list)
    for n_sc, sc in enumerate(faults):
        incidents = run(sc)
        lo, hi = sc.onset_ts - 5, sc.onset_ts + sc.fault_s + 30
        window = [i for i in incidents if lo <= (i.detected_ts or i.start_ts) <= hi]
        end = sc.onset_ts + sc.fault_s

        def overlap(i: Incident, end: float = end, onset: float = sc.onset_ts) -> float:
            return min(i.end_ts or end + 60, end) - max(i.start_ts, onset)

        primary = max(window, key=overlap) if window else None
        extra += max(0, len(window) - 1)
        label = sc.key
        key = label + ("(all)" if sc.region is None else "") + ("+new" if n_sc >= len(classic)
                                                                 else "")
        ok_cause = primary is not None and primary.cause == sc.cause
        ok_scope = primary is not None and primary.scope == sc.expected_scope
        per[key]["cause"].append(float(ok_cause))
        per[key]["scope"].append(float(ok_scope))
        if n_sc < len(classic):
            old["cause"].append(float(ok_cause))
            old["scope"].append(float(ok_scope))
            old["extra"].append(max(0, len(window) - 1))
        if primary is not None and primary.detected_ts is not None:
            ttd = primary.detected_ts - sc.onset_ts
            per[key]["ttd"].append(ttd)
            ttds.append(ttd)
            if n_sc < len(classic):
                old["ttd"].append(ttd)
        if args.verbose:
            for i in window:
                if i is not primary:
                    print(f"  extra {sc.name}: {i.cause.value} {i.scope} {i.summary}")
        if args.verbose and not (ok_cause and ok_scope):
            got = "nothing" if primary is None else f"{primary.cause.value} {primary.scope}"
            print(
                f"  miss {sc.name}: expected {label} {sc.expected_scope}, got {got}"
                f" ({len(window)} incidents)"
            )
    clean = clean_shows(args.clean)
    false_incidents = 0
    clean_s = 0.0
    for sc in clean:
        incidents = run(sc)
        false_incidents += len(incidents)
        clean_s += sc.duration_s
        if args.verbose:
            for i in incidents:
                print(f"  false {sc.name}: {i.cause.value} {i.scope} {i.summary}")
    # Probes starved on their own hosts, no fault on the path: every
    # incident in the span is a false one (the probes' own drops read as
    # the region's packet loss).
    starved = starved_scenarios(seeds=args.seeds)
    starved_incidents = 0
    for sc in starved:
        lo, hi = sc.onset_ts - 5, sc.onset_ts + sc.fault_s + 30
        raised = [i for i in run(sc) if lo <= (i.detected_ts or i.start_ts) <= hi]
        starved_incidents += len(raised)
        if args.verbose:
            for i in raised:
                print(f"  false {sc.name}: {i.cause.value} {i.scope} {i.summary}")
    print(f"{'cause':<22}{'n':>4}{'cause acc':>11}{'loc acc':>9}{'ttd p50':>9}{'ttd p95':>9}")
    for key in sorted(per):
        d = per[key]
        print(
            f"{key:<22}{len(d['cause']):>4}{statistics.mean(d['cause']):>11.2f}"
            f"{statistics.mean(d['scope']):>9.2f}{percentile(d['ttd'], 50):>9.1f}"
            f"{percentile(d['ttd'], 95):>9.1f}"
        )
    all_cause = [x for d in per.values() for x in d["cause"]]
    all_scope = [x for d in per.values() for x in d["scope"]]
    hours = clean_s / 3600
    figures = {
        "scenarios": len(faults),
        "clean_shows": len(clean),
        "clean_hours": round(hours, 2),
        "cause_accuracy": round(statistics.mean(all_cause), 4),
        "localization_accuracy": round(statistics.mean(all_scope), 4),
        "ttd_p50_s": round(percentile(ttds, 50), 2),
        "ttd_p95_s": round(percentile(ttds, 95), 2),
        "false_incidents_per_clean_hour": round(false_incidents / hours, 3),
        "extra_incidents_in_fault_scenarios": extra,
        "classic_scenarios": len(classic),
        "classic_cause_accuracy": round(statistics.mean(old["cause"]), 4),
        "classic_localization_accuracy": round(statistics.mean(old["scope"]), 4),
        "classic_ttd_p50_s": round(percentile(old["ttd"], 50), 2),
        "classic_ttd_p95_s": round(percentile(old["ttd"], 95), 2),
        "classic_extra_incidents": int(sum(old["extra"])),
        "starved_scenarios": len(starved),
        "starved_incidents": starved_incidents,
        "runtime_s": round(time.monotonic() - t0, 1),
    }
    print(
        f"overall: cause {figures['cause_accuracy']:.3f}, localization "
        f"{figures['localization_accuracy']:.3f}, TTD p50 {figures['ttd_p50_s']} s / p95 "
        f"{figures['ttd_p95_s']} s, false incidents {figures['false_incidents_per_clean_hour']}"
        f"/clean hour over {hours:.1f} h, {extra} extra incidents in fault scenarios"
    )
    print(f"starved probes, no path fault: {starved_incidents} incidents over "
          f"{len(starved)} scenarios")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
