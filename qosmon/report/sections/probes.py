"""The probes section: each probe's coverage and health, its own health (did
it keep up: kernel drops at its sockets, a late event loop), and the problems
that were a probe's own (left out of the region verdicts)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qosmon.report.sections.context import ReportContext
from qosmon.report.sections.incidents import IncidentRow, incident_rows


@dataclass(frozen=True)
class ProbeRow:
    probe: str
    region: str
    isp: str
    edge: str
    samples: int
    coverage_pct: float  # of the show's seconds
    connected_pct: float | None
    rtt_p50: float | None
    # Seconds left out of the verdict: probe-local problems, and seconds in
    # which the probe itself was starved.
    excluded_s: int
    local: list[int]  # numbers of its probe-local incidents
    up: bool
    # Its own health: seconds with kernel drops at its sockets (and how many
    # datagrams), seconds its loop ran at least ``lag_threshold_ms`` late;
    # False when it reported neither figure (an older probe).
    health_known: bool = False
    drop_s: int = 0
    drops: int = 0
    late_s: int = 0
    lag_threshold_ms: float = 0.0

    @property
    def overloaded(self) -> bool:
        return bool(self.drop_s or self.late_s)


@dataclass(frozen=True)
class ProbesView:
    probes: list[ProbeRow]
    local_incidents: list[IncidentRow]


def build(ctx: ReportContext) -> ProbesView:
    table = ctx.table
    n_s = max(1, math.ceil(ctx.span.seconds))
    rows = []
    for p_i, probe in enumerate(table.probes):
        m = table.probe_idx == p_i
        region, isp, edge = table.probe_labels[probe]
        conn = table.connected[m]
        rtt = table.rtt_ms[m]
        rtt = rtt[~np.isnan(rtt)]
        n = int(m.sum())
        drops = table.socket_drops[m]
        lag = table.probe_lag_ms[m]
        with np.errstate(invalid="ignore"):
            drop_s = int((drops > 0).sum())
            late_s = int((lag >= ctx.th.probe_lag_ms).sum())
        rows.append(ProbeRow(
            probe=probe, region=region, isp=isp, edge=edge, samples=n,
            coverage_pct=100.0 * n / n_s,
            connected_pct=100.0 * float(conn.mean()) if len(conn) else None,
            rtt_p50=float(np.median(rtt)) if len(rtt) else None,
            excluded_s=int((ctx.excluded & m).sum()),
            local=[ctx.numbers[i.incident_id] for i in ctx.local if probe in i.probes],
            up=bool(len(conn)) and float(conn.mean()) >= 0.95 and n >= 0.9 * n_s,
            health_known=bool((~np.isnan(drops)).any() or (~np.isnan(lag)).any()),
            drop_s=drop_s, drops=int(np.nansum(drops)), late_s=late_s,
            lag_threshold_ms=ctx.th.probe_lag_ms,
        ))
    return ProbesView(probes=rows, local_incidents=[r for r in incident_rows(ctx) if r.local])
