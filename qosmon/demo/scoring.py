"""Faults injected vs incidents found: the demo's (and its test's) verdict on
the diagnosis. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from qosmon.demo.scenario import EXPECTED_CAUSE, FaultKind, Scenario
from qosmon.model import Cause, FoundAs, Incident, InjectedFault

# An incident found this long after a fault ended still belongs to it
# (detection lags, and viewers who left do not come back at once).
GRACE_S = 20.0
# Causes that are steps on the way to the injected one, not false findings.
_ACCEPTED_ALONG = {
    FaultKind.SELL_OUT: {Cause.LOW_STOCK},
}


@dataclass
class FaultResult:
    index: int
    kind: FaultKind
    regions: list[str]
    expected: Cause
    start_ts: float
    end_ts: float
    sku: str | None = None
    warehouse: str | None = None
    found: list[FoundAs] = field(default_factory=list)  # incidents with the right cause/place
    detect_s: float | None = None  # from onset to the first such incident's detection

    @property
    def ok(self) -> bool:
        return bool(self.found)

    def record(self) -> InjectedFault:
        """The fault and its scoring as the report shows them."""
        return InjectedFault(
            index=self.index, kind=self.kind.value, regions=self.regions, sku=self.sku or "",
            warehouse=self.warehouse or "", start_ts=self.start_ts, end_ts=self.end_ts,
            expected_cause=self.expected, found=list(self.found), detect_s=self.detect_s,
        )


def _in_scope(incident: Incident, regions: list[str], all_regions: list[str], sku: str | None,
              warehouse: str | None) -> bool:
    scope = incident.scope
    if "region" in scope:
        return scope["region"] in regions
    if "warehouse" in scope and warehouse is not None:
        return scope["warehouse"] == warehouse
    if sku is not None and sku in incident.skus:
        return True
    # No region in scope: the whole show, right only if the fault was.
    return sorted(regions) == sorted(all_regions) and "probe_id" not in scope


def score(
    scenario: Scenario, start_ts: float, incidents: list[Incident]
) -> tuple[list[FaultResult], list[Incident]]:
    """Each fault with the incidents that name it rightly, and the incidents
    that match no fault (false findings)."""
    all_regions = [r.name for r in scenario.regions]
    results: list[FaultResult] = []
    explained: set[str] = set()
    for i, f in enumerate(scenario.faults):
        res = FaultResult(
            index=i,
            kind=f.kind,
            regions=scenario.fault_regions(f),
            expected=EXPECTED_CAUSE[f.kind],
            start_ts=start_ts + f.at_s,
            end_ts=start_ts + scenario.end_s(f),
            sku=f.sku,
            warehouse=f.warehouse,
        )
        accepted = {res.expected} | _ACCEPTED_ALONG.get(f.kind, set())
        for inc in incidents:
            inc_end = inc.end_ts if inc.end_ts is not None else float("inf")
            overlaps = inc.start_ts <= res.end_ts + GRACE_S and inc_end >= res.start_ts
            if not overlaps or inc.cause not in accepted:
                continue
            if not _in_scope(inc, res.regions, all_regions, f.sku, f.warehouse):
                continue
            explained.add(inc.incident_id)
            if inc.cause is res.expected:
                res.found.append(FoundAs(incident_id=inc.incident_id, cause=inc.cause))
                seen = inc.detected_ts if inc.detected_ts is not None else inc.start_ts
                ttd = max(0.0, seen - res.start_ts)
                res.detect_s = ttd if res.detect_s is None else min(res.detect_s, ttd)
        results.append(res)
    false = [inc for inc in incidents if inc.incident_id not in explained]
    return results, false
