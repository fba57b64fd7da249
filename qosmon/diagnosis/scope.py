"""Where a set of bad probes points: the narrowest scope that explains it.

Probes are compared with their peers. A group is only named when every known
probe inside it is bad (it is "pure") and it holds at least two probes; a
single bad probe whose peers are fine is that probe's own problem and is kept
out of regional verdicts. Scopes always start at the region, since node and
ISP names are only meaningful within one:

- all known probes bad, in two or more regions  -> ``{}`` (origin/publisher)
- all known probes of a region bad              -> ``{"region": R}``
- all known probes of one edge node (or ISP) of a region bad, others fine
                                                -> ``{"region": R, "edge_node": N}``
                                                   / ``{"region": R, "isp": I}``
- most of a region bad but no pure sub-group    -> ``{"region": R}``
- one probe alone                               -> ``{"probe_id": P}``

Which of ``{"region": R}`` and ``{"region": R, "edge_node": N}`` an incident
reports when the whole region sits on one node depends on the cause (a node
failure names the node); the engine decides that from ``ProbeGroup.common``.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from qosmon.diagnosis.probe_health import Labels

# A region with no pure sub-group is named when at least this share of its
# known probes is bad (and at least two are).
REGION_MAJORITY = 0.6


@dataclass(frozen=True)
class ProbeGroup:
    scope: dict[str, str]
    probes: frozenset[str]
    # Dimension values every probe of the group shares (e.g. one edge node).
    common: dict[str, str] = field(default_factory=dict)

    @property
    def is_single_probe(self) -> bool:
        return "probe_id" in self.scope

    @property
    def key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.scope.items())) or "*"


def _common(members: Set[str], labels: Mapping[str, Labels]) -> dict[str, str]:
    out: dict[str, str] = {}
    for dim in ("region", "edge_node", "isp"):
        values = {labels[p].get(dim) for p in members}
        if len(values) == 1:
            (v,) = values
            if v:
                out[dim] = v
    return out


def localize_probes(
    bad: Set[str], known: Set[str], labels: Mapping[str, Labels]
) -> list[ProbeGroup]:
    """Partition the bad probes into groups, each with its narrowest scope."""
    known = set(known) | set(bad)
    if not bad:
        return []
    regions_known = {labels[p].region for p in known}
    if set(bad) >= known and len(regions_known) >= 2:
        return [ProbeGroup({}, frozenset(bad), _common(bad, labels))]
    groups: list[ProbeGroup] = []
    for region in sorted({labels[p].region for p in bad}):
        bad_r = {p for p in bad if labels[p].region == region}
        known_r = {p for p in known if labels[p].region == region}
        if bad_r == known_r and len(bad_r) >= 2:
            groups.append(ProbeGroup({"region": region}, frozenset(bad_r), _common(bad_r, labels)))
            continue
        rest = set(bad_r)
        for dim in ("edge_node", "isp"):
            for value in sorted({labels[p].get(dim) for p in rest} - {""}):
                members = {p for p in rest if labels[p].get(dim) == value}
                peers = {p for p in known_r if labels[p].get(dim) == value}
                if members == peers and len(members) >= 2:
                    groups.append(
                        ProbeGroup(
                            {"region": region, dim: value},
                            frozenset(members),
                            _common(members, labels),
                        )
                    )
                    rest -= members
        if len(rest) >= 2 and len(rest) >= REGION_MAJORITY * len(known_r):
            groups.append(ProbeGroup({"region": region}, frozenset(rest), _common(rest, labels)))
            continue
        for p in sorted(rest):
            groups.append(ProbeGroup({"probe_id": p}, frozenset({p}), _common({p}, labels)))
    return groups
