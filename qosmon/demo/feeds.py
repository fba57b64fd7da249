"""The demo's commerce platform and warehouses: viewers, orders, chat volume
and stock that move as they would in a live show, and react to what the
scenario does to each region.

Pure: time and randomness come in as arguments, so a seeded run is repeatable
and testable without an event loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from qosmon.demo.scenario import FaultKind, FaultSpec, Scenario
from qosmon.model import BusinessSample, StockRecord

# How much more likely a viewer is to leave in a second while the region
# suffers each fault (viewers leave within seconds when the picture freezes).
_LEAVE_FACTOR = {
    FaultKind.OUTAGE: 25.0,
    FaultKind.BANDWIDTH: 8.0,
    FaultKind.LOSS: 4.0,
    FaultKind.DELAY: 2.0,
    FaultKind.CHAT_STALL: 1.5,
    FaultKind.AUDIENCE_DROP: 10.0,
}
# ... and how much of their buying survives it.
_BUY_FACTOR = {
    FaultKind.OUTAGE: 0.0,
    FaultKind.BANDWIDTH: 0.3,
    FaultKind.LOSS: 0.6,
    FaultKind.DELAY: 0.9,
    FaultKind.CHAT_STALL: 0.8,
    FaultKind.AUDIENCE_DROP: 0.5,
}
_BASE_LEAVE_PER_S = 1 / 600  # mean stay of ten minutes
_CHAT_PER_VIEWER_PER_S = 0.004
_SNAPSHOT_EVERY_S = 15.0
_RETURN_PER_S = 0.04
_SELL_OUT_BURST_S = 8.0  # a flash of demand empties the warehouse over this long


@dataclass
class FeedStep:
    business: list[BusinessSample] = field(default_factory=list)
    stock_changes: list[StockRecord] = field(default_factory=list)
    snapshot: list[StockRecord] = field(default_factory=list)
    # (warehouse, source_ts): warehouses that had nothing to send this second
    # and say so, as a feed that heartbeats does.
    heartbeats: list[tuple[str, float]] = field(default_factory=list)


class ShowFeeds:
    def __init__(self, scenario: Scenario, start_ts: float, seed: int | None = None) -> None:
        self.sc = scenario
        self.start_ts = start_ts
        self._rng = np.random.default_rng(scenario.show.seed if seed is None else seed)
        self.viewers = {r.name: float(r.viewers) for r in scenario.regions}
        self._target = {r.name: float(r.viewers) for r in scenario.regions}
        self.stock = {w.id: dict(w.stock) for w in scenario.warehouses}
        self._reported_stock: dict[tuple[str, str], int] = {}
        self._frozen_since: dict[str, float] = {}  # warehouse -> source_ts frozen at
        self._last_snapshot_s = -math.inf
        self._burst: dict[tuple[str, str], float] = {}  # (warehouse, sku) -> units per s

    def active(self, t_s: float) -> list[FaultSpec]:
        return [f for f in self.sc.faults if f.at_s <= t_s < self.sc.end_s(f)]

    def _region_faults(self, region: str, t_s: float) -> list[FaultKind]:
        out = []
        for f in self.active(t_s):
            if f.kind in _LEAVE_FACTOR and (f.region is None or f.region == region):
                out.append(f.kind)
        return out

    def _on_screen(self, sku: str, t_s: float) -> bool:
        spec = next(s for s in self.sc.skus if s.sku == sku)
        if spec.on_screen is None:
            return True
        return any(a <= t_s < b for a, b in spec.on_screen)

    def step(self, t_s: float, now: float) -> FeedStep:
        """Advance one second of show time ``t_s`` (seconds since start)."""
        out = FeedStep()
        rng = self._rng
        for f in self.active(t_s):
            if f.kind is FaultKind.SELL_OUT and f.at_s <= t_s < f.at_s + 1:
                assert f.warehouse is not None and f.sku is not None
                left = self.stock[f.warehouse].get(f.sku, 0)
                self._burst[(f.warehouse, f.sku)] = left / _SELL_OUT_BURST_S
        for region in self.sc.regions:
            name = region.name
            faults = self._region_faults(name, t_s)
            # Slow swing of the audience around the target: arrivals follow a
            # show's rhythm, not a constant.
            target = self._target[name] * (1 + 0.15 * math.sin(2 * math.pi * t_s / 300))
            leave_p = _BASE_LEAVE_PER_S * math.prod(_LEAVE_FACTOR[k] for k in faults)
            viewers = self.viewers[name]
            leaves = int(rng.binomial(int(viewers), min(0.5, leave_p)))
            # Viewers who left come back once the picture does: the gap to
            # the show's audience closes over tens of seconds.
            joins_rate = target * _BASE_LEAVE_PER_S + max(0.0, target - viewers) * _RETURN_PER_S
            if FaultKind.OUTAGE in faults:
                joins_rate = 0.0  # nobody can start watching
            joins = int(rng.poisson(max(0.0, joins_rate)))
            viewers = max(0.0, viewers - leaves + joins)
            self.viewers[name] = viewers
            buy = math.prod(_BUY_FACTOR.get(k, 1.0) for k in faults)
            chat = 0 if FaultKind.CHAT_STALL in faults else int(
                rng.poisson(viewers * _CHAT_PER_VIEWER_PER_S)
            )
            wh = region.warehouses[0]
            total_orders = 0
            for sku in self.sc.skus:
                if not self._on_screen(sku.sku, t_s):
                    continue
                lam = viewers * sku.conversion_per_min / 60 * buy
                want = int(rng.poisson(lam))
                burst = self._burst.get((wh, sku.sku), 0.0)
                if burst:
                    want += int(rng.poisson(burst / max(1, self._regions_served(wh))))
                have = self.stock.get(wh, {}).get(sku.sku, 0)
                sold = min(want, have)
                if sku.sku in self.stock.get(wh, {}):
                    self.stock[wh][sku.sku] = have - sold
                total_orders += sold
                out.business.append(
                    BusinessSample(ts=now, show_id=self.sc.show.id, region=name, sku=sku.sku,
                                   orders=sold)
                )
            out.business.append(
                BusinessSample(
                    ts=now, show_id=self.sc.show.id, region=name,
                    viewers_online=int(viewers), joins=joins, leaves=leaves,
                    orders=total_orders, chat_messages=chat,
                )
            )
        self._stock_feed(t_s, now, out)
        return out

    def _regions_served(self, warehouse: str) -> int:
        return sum(1 for r in self.sc.regions if r.warehouses[0] == warehouse)

    def _stock_feed(self, t_s: float, now: float, out: FeedStep) -> None:
        stale = {
            f.warehouse for f in self.active(t_s) if f.kind is FaultKind.STALE_INVENTORY
        }
        for wh in list(self._frozen_since):
            if wh not in stale:
                del self._frozen_since[wh]
        snapshot_due = t_s - self._last_snapshot_s >= _SNAPSHOT_EVERY_S
        if snapshot_due:
            self._last_snapshot_s = t_s
        for wh, items in self.stock.items():
            if wh in stale:
                # The warehouse's sync job has stopped: nothing new arrives.
                self._frozen_since.setdefault(wh, now)
                continue
            sent = snapshot_due
            for sku, on_hand in items.items():
                rec = StockRecord(ts=now, source_ts=now, warehouse=wh, sku=sku, on_hand=on_hand,
                                  full_snapshot=snapshot_due)
                if snapshot_due:
                    out.snapshot.append(rec)
                elif self._reported_stock.get((wh, sku)) != on_hand:
                    out.stock_changes.append(rec)
                    sent = True
                self._reported_stock[(wh, sku)] = on_hand
            if not sent:
                out.heartbeats.append((wh, now))
