"""``qosmon diagnose --show ID``: re-run diagnosis on a stored show.

Reads the show, its probe samples, business samples and stock states through
the ``Store`` interface and replays them through the engine second by second,
as they would have arrived live (each sample is handed over at its own time,
the engine steps with its usual lag). Prints the incidents; ``--json`` prints
them as JSON, ``--save`` writes them back to the store.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from qosmon.configfile import load_model
from qosmon.diagnosis.config import DiagnosisConfig
from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.model import BusinessSample, Incident, ProbeSample, Show, StockState
from qosmon.store.url import add_store_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--show", required=True, metavar="ID", help="show id")
    add_store_argument(parser)
    parser.add_argument("--config", metavar="FILE", help="diagnosis thresholds (TOML)")
    parser.add_argument("--json", action="store_true", help="print incidents as JSON")
    parser.add_argument("--save", action="store_true", help="write the incidents to the store")


def replay(
    show: Show,
    probes: list[ProbeSample],
    business: list[BusinessSample],
    stock: list[StockState],
    config: DiagnosisConfig | None = None,
) -> list[Incident]:
    """Feed stored data to a fresh engine in time order, one second at a time."""
    engine = DiagnosisEngine(show, config)
    cfg = engine.cfg
    events: list[tuple[float, int, object]] = []
    events += [(x.ts, 0, x) for x in probes]
    events += [(x.ts, 1, x) for x in business]
    events += [(x.ts, 2, x) for x in stock]
    if not events:
        return []
    events.sort(key=lambda e: (e[0], e[1]))
    first = math.floor(events[0][0])
    last = math.ceil(events[-1][0])
    end = last + int(cfg.incident.lag_s) + cfg.incident.clear_s + cfg.business.clear_s + 2
    i = 0
    for now in range(first + 1, end + 1):
        batch_p: list[ProbeSample] = []
        batch_b: list[BusinessSample] = []
        batch_s: list[StockState] = []
        while i < len(events) and events[i][0] <= now:
            x = events[i][2]
            if isinstance(x, ProbeSample):
                batch_p.append(x)
            elif isinstance(x, BusinessSample):
                batch_b.append(x)
            elif isinstance(x, StockState):
                batch_s.append(x)
            i += 1
        engine.add_probe_samples(batch_p)
        engine.add_business(batch_b)
        engine.add_stock_states(batch_s)
        engine.step(float(now))
    return engine.incidents


def format_incident(inc: Incident) -> str:
    scope = ", ".join(f"{k}={v}" for k, v in inc.scope.items()) or "whole show"
    end = "ongoing" if inc.end_ts is None else f"{inc.end_ts - inc.start_ts:.0f} s"
    lines = [
        f"{inc.incident_id} [{inc.severity.value}] {inc.cause.value} ({scope}), {end}",
        f"  {inc.summary}",
    ]
    lines += [f"  - {e.text}" for e in inc.evidence]
    impact = []
    if inc.viewers_lost is not None:
        impact.append(f"viewers lost {inc.viewers_lost:,.0f}")
    if inc.orders_lost is not None:
        impact.append(f"orders lost {inc.orders_lost:,.1f}")
    if impact:
        lines.append("  impact: " + ", ".join(impact))
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    config = load_model(Path(args.config), DiagnosisConfig) if args.config else None
    # The store is imported here so the offline tools do not pay for it.
    from qosmon.store import open_store

    # A mistyped path says "no such store" instead of creating one; read-only
    # unless ``--save`` writes the incidents back.
    store = open_store(args.store, read_only=not args.save, must_exist=True)
    try:
        show = store.get_show(args.show)
        if show is None:
            print(f"qosmon diagnose: no show {args.show!r} in {args.store}", file=sys.stderr)
            return 2
        incidents = replay(
            show,
            store.probe_samples(show.show_id),
            store.business(show.show_id),
            store.stock_states(show.show_id),
            config,
        )
        if args.save:
            store.put_incidents(show.show_id, incidents)
    finally:
        store.close()
    if args.json:
        print(json.dumps([i.model_dump(mode="json") for i in incidents], indent=2))
    else:
        print(f"show {show.show_id}: {len(incidents)} incident(s)")
        for inc in incidents:
            print(format_incident(inc))
    return 0
