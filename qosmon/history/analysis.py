"""What keeps failing across shows: pure analysis over stored show summaries.

Takes :class:`~qosmon.model.ShowSummary` objects (what the store keeps per
show) and answers the questions a team asks after weeks of shows: which
region / ISP / edge node keeps degrading, in which local time slot, which SKUs
keep selling out in the same warehouse, and whether a change (a CDN switch, a
new edge node) made a region better. No I/O, no clock.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from qosmon.model import STOCK_CAUSES, Cause, ShowSummary
from qosmon.regions import region_zone

# Local time of day in slots of this many hours: fine enough to tell an
# evening peak from a late night, coarse enough that weekly shows recur.
SLOT_HOURS = 3
# Fewer shows than this on either side of a change: too few to tell.
MIN_SHOWS_TO_COMPARE = 3
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Change:
    """A dated change to compare before and after (``--change DATE=label``)."""

    ts: float
    label: str


@dataclass
class TrendPoint:
    show_id: str
    title: str
    start_ts: float
    score: float | None
    incident_minutes: float


@dataclass
class NetworkRow:
    """One region x ISP x edge node: its stream incidents over the period.
    An empty ISP or node means the incident covered the whole region."""

    region: str
    isp: str
    edge_node: str
    incidents: int = 0
    incident_minutes: float = 0.0
    viewers_lost: float = 0.0
    orders_lost: float = 0.0
    shows: set[str] = field(default_factory=set)
    causes: dict[str, int] = field(default_factory=dict)


@dataclass
class SlotRow:
    """One region x local weekday x time slot: how often shows aired in it,
    how many of them had stream incidents, and for how long."""

    region: str
    zone: str
    weekday: int  # 0 = Monday
    slot: int  # first local hour of the slot
    shows_aired: set[str] = field(default_factory=set)
    shows_failing: set[str] = field(default_factory=set)
    incident_minutes: float = 0.0
    viewers_lost: float = 0.0
    orders_lost: float = 0.0

    @property
    def label(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {self.slot:02d}:00-{(self.slot + SLOT_HOURS) % 24:02d}:00"

    @property
    def failing_share(self) -> float:
        return len(self.shows_failing) / len(self.shows_aired) if self.shows_aired else 0.0


@dataclass
class SkuRow:
    """A SKU x warehouse that sold out, went red or stale in several shows."""

    sku: str
    warehouse: str
    kind: str
    shows: list[str] = field(default_factory=list)
    refill_units: list[int] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


@dataclass
class Side:
    shows: int
    mean_score: float | None
    incident_minutes_per_show: float | None


@dataclass
class ChangeRow:
    change: Change
    region: str
    before: Side
    after: Side
    verdict: str  # "better", "worse", "no clear change", "too few shows to tell"


@dataclass
class IncidentRow:
    show_id: str
    title: str
    incident_id: str
    start_ts: float
    minutes: float
    cause: str
    where: str
    viewers_lost: float | None
    orders_lost: float | None
    summary: str


@dataclass
class History:
    since_ts: float | None
    until_ts: float | None
    shows: list[ShowSummary]
    regions: list[str]
    trend: dict[str, list[TrendPoint]]
    network: list[NetworkRow]
    slots: list[SlotRow]
    causes: list[str]  # stacked in this order
    cause_minutes: list[dict[str, float]]  # per show, same order as ``shows``
    incidents: list[IncidentRow]
    skus: list[SkuRow]
    changes: list[ChangeRow]
    zones: dict[str, str]


def _where(scope: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items()) or "whole show"


def _slot_of(ts: float, zone: ZoneInfo) -> tuple[int, int]:
    local = datetime.fromtimestamp(ts, UTC).astimezone(zone)
    return local.weekday(), (local.hour // SLOT_HOURS) * SLOT_HOURS


def _side(points: list[TrendPoint]) -> Side:
    scores = [p.score for p in points if p.score is not None]
    return Side(
        shows=len(points),
        mean_score=round(sum(scores) / len(scores), 1) if scores else None,
        incident_minutes_per_show=(
            round(sum(p.incident_minutes for p in points) / len(points), 2) if points else None
        ),
    )


def _compare(before: Side, after: Side) -> str:
    if min(before.shows, after.shows) < MIN_SHOWS_TO_COMPARE:
        return "too few shows to tell"
    if before.mean_score is None or after.mean_score is None:
        return "too few shows to tell"
    d = after.mean_score - before.mean_score
    # Five points on a 0-100 scale is a change a viewer would notice
    # (roughly a percent of watch time frozen); less is noise between shows.
    if d >= 5:
        return "better"
    if d <= -5:
        return "worse"
    return "no clear change"


def analyse(
    summaries: list[ShowSummary],
    changes: list[Change] = (),  # type: ignore[assignment]
    zones: dict[str, str] | None = None,
    since_ts: float | None = None,
    until_ts: float | None = None,
) -> History:
    """Everything the history page and JSON show, from show summaries
    (any order; shows outside [since_ts, until_ts) are left out)."""
    shows = sorted(
        (s for s in summaries
         if (since_ts is None or s.start_ts >= since_ts)
         and (until_ts is None or s.start_ts < until_ts)),
        key=lambda s: (s.start_ts, s.show_id),
    )
    regions = list(dict.fromkeys(r.region for s in shows for r in s.regions))
    zone_names = {r: region_zone(r, zones) for r in regions}
    tz = {r: ZoneInfo(z) for r, z in zone_names.items()}

    trend: dict[str, list[TrendPoint]] = {r: [] for r in regions}
    for s in shows:
        for rs in s.regions:
            trend[rs.region].append(TrendPoint(s.show_id, s.title, s.start_ts, rs.score,
                                               rs.incident_minutes))

    network: dict[tuple[str, str, str], NetworkRow] = {}
    slots: dict[tuple[str, int, int], SlotRow] = {}
    incidents: list[IncidentRow] = []
    cause_set: dict[str, None] = {}
    cause_minutes: list[dict[str, float]] = []
    skus: dict[tuple[str, str, str], SkuRow] = {}

    for s in shows:
        show_regions = [r.region for r in s.regions]
        for r in show_regions:
            wd, hr = _slot_of(s.start_ts, tz[r])
            slots.setdefault((r, wd, hr), SlotRow(r, zone_names[r], wd, hr)).shows_aired.add(
                s.show_id)
        minutes: dict[str, float] = defaultdict(float)
        for inc in s.incidents:
            dur = max(0.0, inc.end_ts - inc.start_ts) / 60.0
            minutes[str(inc.cause)] += dur
            cause_set[str(inc.cause)] = None
            incidents.append(IncidentRow(
                s.show_id, s.title, inc.incident_id, inc.start_ts, round(dur, 2),
                str(inc.cause), _where(inc.scope), inc.viewers_lost, inc.orders_lost,
                inc.summary,
            ))
            if inc.cause in STOCK_CAUSES or inc.cause == Cause.NETWORK_FINE:
                continue  # not the network's doing: no place in the network tables
            touched = [inc.scope["region"]] if inc.scope.get("region") else show_regions
            share = 1.0 / max(1, len(touched))
            for r in touched:
                key = (r, inc.scope.get("isp", ""), inc.scope.get("edge_node", ""))
                row = network.setdefault(key, NetworkRow(*key))
                row.incidents += 1
                row.incident_minutes += dur
                row.viewers_lost += (inc.viewers_lost or 0.0) * share
                row.orders_lost += (inc.orders_lost or 0.0) * share
                row.shows.add(s.show_id)
                row.causes[str(inc.cause)] = row.causes.get(str(inc.cause), 0) + 1
                if r in tz:
                    wd, hr = _slot_of(inc.start_ts, tz[r])
                    slot = slots.setdefault((r, wd, hr), SlotRow(r, zone_names[r], wd, hr))
                    slot.shows_failing.add(s.show_id)
                    slot.incident_minutes += dur
                    slot.viewers_lost += (inc.viewers_lost or 0.0) * share
                    slot.orders_lost += (inc.orders_lost or 0.0) * share
        cause_minutes.append(dict(minutes))
        for ev in s.stock:
            row2 = skus.setdefault((ev.sku, ev.warehouse, ev.kind),
                                   SkuRow(ev.sku, ev.warehouse, ev.kind))
            if s.show_id not in row2.shows:
                row2.shows.append(s.show_id)
            if ev.refill_units is not None:
                row2.refill_units.append(ev.refill_units)
            if ev.action and ev.action not in row2.actions:
                row2.actions.append(ev.action)

    change_rows = []
    for ch in sorted(changes, key=lambda c: c.ts):
        for r in regions:
            before = _side([p for p in trend[r] if p.start_ts < ch.ts])
            after = _side([p for p in trend[r] if p.start_ts >= ch.ts])
            change_rows.append(ChangeRow(ch, r, before, after, _compare(before, after)))

    def net_rank(n: NetworkRow) -> tuple[float, float, int]:
        return (-n.incident_minutes, -(n.viewers_lost + n.orders_lost), -len(n.shows))

    def slot_rank(n: SlotRow) -> tuple[float, float, float]:
        return (-n.incident_minutes, -n.failing_share, -(n.viewers_lost + n.orders_lost))

    order = [str(c) for c in Cause if str(c) in cause_set]
    return History(
        since_ts=since_ts, until_ts=until_ts, shows=shows, regions=regions, trend=trend,
        network=sorted(network.values(), key=net_rank),
        slots=sorted((s for s in slots.values() if s.shows_failing), key=slot_rank),
        causes=order, cause_minutes=cause_minutes,
        incidents=sorted(incidents, key=lambda i: (-i.start_ts, i.incident_id)),
        skus=sorted((k for k in skus.values() if len(k.shows) > 1),
                    key=lambda k: (-len(k.shows), k.sku, k.warehouse)),
        changes=change_rows, zones=zone_names,
    )


def history_json(h: History) -> dict[str, object]:
    """The machine-readable twin of the page (history.json)."""

    def num(v: float | None) -> float | None:
        return None if v is None or math.isnan(v) else round(v, 2)

    return {
        "since_ts": h.since_ts, "until_ts": h.until_ts,
        "shows": [{"show_id": s.show_id, "title": s.title, "start_ts": s.start_ts,
                   "end_ts": s.end_ts,
                   "scores": {r.region: r.score for r in s.regions}} for s in h.shows],
        "regions": {r: {"zone": h.zones[r],
                        "scores": [{"show_id": p.show_id, "start_ts": p.start_ts,
                                    "score": p.score} for p in h.trend[r]]}
                    for r in h.regions},
        "network": [{"region": n.region, "isp": n.isp, "edge_node": n.edge_node,
                     "incidents": n.incidents, "incident_minutes": num(n.incident_minutes),
                     "viewers_lost": num(n.viewers_lost), "orders_lost": num(n.orders_lost),
                     "shows": len(n.shows), "causes": n.causes} for n in h.network],
        "time_slots": [{"region": s.region, "zone": s.zone, "weekday": WEEKDAYS[s.weekday],
                        "slot": s.label.split(" ", 1)[1], "shows_aired": len(s.shows_aired),
                        "shows_failing": len(s.shows_failing),
                        "incident_minutes": num(s.incident_minutes),
                        "viewers_lost": num(s.viewers_lost), "orders_lost": num(s.orders_lost)}
                       for s in h.slots],
        "causes": [{"show_id": s.show_id, "minutes": {c: num(m.get(c, 0.0)) for c in h.causes}}
                   for s, m in zip(h.shows, h.cause_minutes, strict=True)],
        "incidents": [vars(i) for i in h.incidents],
        "skus": [{"sku": k.sku, "warehouse": k.warehouse, "kind": k.kind, "shows": k.shows,
                  "refill_units": k.refill_units, "actions": k.actions} for k in h.skus],
        "changes": [{"label": c.change.label, "ts": c.change.ts, "region": c.region,
                     "before": vars(c.before), "after": vars(c.after), "verdict": c.verdict}
                    for c in h.changes],
    }
