"""The inventory alert state of one show: stock per SKU x warehouse, judged
against what the show is about to sell.

Feed it stock records, business samples and on-screen events as they arrive;
call ``step(now)`` about once a second to get the states that changed. Pure:
no I/O, time comes in as ``now`` (the pipeline's clock); data timestamps are
the producers' own.

Orders in a region are served by that region's first warehouse
(``Show.region_warehouses``), so demand is per SKU x warehouse. A warehouse's
freshness is judged as a whole: feeds send increments on change plus periodic
full snapshots, so a SKU that has not changed sends nothing, and what says
the figure is still current is that its warehouse is still talking. A feed
may also heartbeat (``add_heartbeat``: nothing changed up to ``source_ts``);
a warehouse that has heartbeated is held to the shorter heartbeat age limit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from qosmon.inventory import levels
from qosmon.inventory.config import InventoryConfig
from qosmon.inventory.forecast import Demand, forecast_units, remaining_minutes
from qosmon.inventory.refill import refill_units
from qosmon.model import BusinessSample, OnScreen, Show, StockLevel, StockRecord, StockState

Pair = tuple[str, str]  # (sku, warehouse)

# Bound on remembered samples per series, in case step() is not called for a
# long time; at one sample a second this is far beyond any sensible window.
_MAX_SERIES = 100_000


class RegionStock(BaseModel):
    """One SKU as a region sees it: the warehouse that serves the region, the
    region's other warehouses, and the stock across all of the show's
    warehouses (an empty serving warehouse with stock elsewhere is a transfer,
    not a sell-out)."""

    model_config = ConfigDict(extra="forbid")

    region: str
    sku: str
    serving_warehouse: str | None
    serving: StockState | None
    warehouses: list[StockState]  # the region's warehouses, in preference order
    region_on_hand: int | None  # across the region's warehouses, known figures
    total_on_hand: int | None  # across every warehouse of the show, known figures
    unknown_warehouses: list[str]  # warehouses whose figure is missing
    serving_empty_elsewhere_stocked: bool


@dataclass
class _Fault:
    previous_on_hand: int
    orders_at_previous: int  # cumulative orders of the pair at the previous figure


@dataclass
class _Figure:
    on_hand: int
    source_ts: float
    orders_at_record: int
    fault: _Fault | None = None


class InventoryTracker:
    def __init__(self, show: Show, config: InventoryConfig | None = None) -> None:
        self.show = show
        self.config = config or InventoryConfig()
        self._skus = {s.sku: s for s in show.skus}
        self._warehouses: list[str] = []
        for whs in show.region_warehouses.values():
            for wh in whs:
                if wh not in self._warehouses:
                    self._warehouses.append(wh)
        self._serving = {r: whs[0] for r, whs in show.region_warehouses.items() if whs}
        self._figures: dict[Pair, _Figure] = {}
        self._wh_source_ts: dict[str, float] = {}
        self._wh_lag_s: dict[str, float] = {}
        self._wh_heartbeats: set[str] = set()
        self._orders: dict[Pair, deque[tuple[float, int]]] = {}
        self._orders_total: dict[Pair, int] = {}
        self._viewers: dict[str, deque[tuple[float, int]]] = {}
        self._first_sku_orders_ts: float | None = None
        self._last_business_ts: float | None = None
        self._on_screen: dict[str, tuple[float, bool]] = {}
        self._shared: dict[str, dict[Pair, Demand]] = {}
        self._own_demand: dict[Pair, Demand] = {}
        self._states: dict[Pair, StockState] = {}
        self._emitted: dict[Pair, tuple[StockLevel, str, bool]] = {}
        self._stock_levels: dict[Pair, StockLevel] = {}
        # Orders for a region with no warehouse, or for the whole show when it
        # has several warehouses: they cannot be put against any stock.
        self.unattributed_orders = 0

    # --- input -----------------------------------------------------------

    def _wants_sku(self, sku: str) -> bool:
        return not self._skus or sku in self._skus

    def _add_warehouse(self, wh: str) -> None:
        if wh not in self._warehouses:
            self._warehouses.append(wh)

    def add_stock(self, records: Iterable[StockRecord]) -> None:
        """Snapshots (``full_snapshot=True``) and increments alike carry the
        new figure for one SKU x warehouse; a figure older than the one held
        (by ``source_ts``) is ignored."""
        cfg = self.config
        for rec in records:
            if not self._wants_sku(rec.sku):
                continue
            self._add_warehouse(rec.warehouse)
            self._note_source(rec.warehouse, rec.source_ts, rec.ts)
            pair = (rec.sku, rec.warehouse)
            orders_now = self._orders_total.get(pair, 0)
            old = self._figures.get(pair)
            if old is not None and rec.source_ts < old.source_ts:
                continue
            fault: _Fault | None = None
            if old is not None and rec.on_hand == 0:
                if old.fault is not None and not rec.full_snapshot:
                    fault = old.fault  # still zero, still unexplained
                elif (
                    old.fault is None
                    and old.on_hand >= cfg.sync_fault_min_drop
                    and not self._explained(old.on_hand, old.orders_at_record, orders_now)
                ):
                    fault = _Fault(old.on_hand, old.orders_at_record)
                # A full snapshot that confirms the zero after a suspected
                # fault is the reconciliation speaking: the zero is real.
            self._figures[pair] = _Figure(rec.on_hand, rec.source_ts, orders_now, fault)

    def add_heartbeat(self, warehouse: str, source_ts: float, received_ts: float) -> None:
        """The warehouse's feed says it has sent every change up to
        ``source_ts`` (its own clock); ``received_ts`` is when it reached us.
        Refreshes the warehouse's figures without changing any, and from now
        on holds the warehouse to ``heartbeat_stale_after_s``."""
        if warehouse not in self._warehouses:
            return  # not a warehouse of this show
        self._wh_heartbeats.add(warehouse)
        self._note_source(warehouse, source_ts, received_ts)

    def _note_source(self, warehouse: str, source_ts: float, received_ts: float) -> None:
        if source_ts >= self._wh_source_ts.get(warehouse, 0.0):
            self._wh_source_ts[warehouse] = source_ts
            self._wh_lag_s[warehouse] = max(0.0, received_ts - source_ts)

    def stale_after_s(self, warehouse: str) -> float:
        """The age limit a warehouse is held to: its own if configured, the
        heartbeat limit once it has heartbeated, else the snapshot-feed one."""
        cfg = self.config
        own = cfg.warehouse_stale_after_s.get(warehouse)
        if own is not None:
            return own
        if warehouse in self._wh_heartbeats:
            return cfg.heartbeat_stale_after_s
        return cfg.stale_after_s

    def heartbeating(self, warehouse: str) -> bool:
        return warehouse in self._wh_heartbeats

    def _explained(self, previous_on_hand: int, orders_then: int, orders_now: int) -> bool:
        sold = orders_now - orders_then
        return sold >= self.config.sync_fault_explained_share * previous_on_hand

    def add_business(self, samples: Iterable[BusinessSample]) -> None:
        """Viewers per region (``region`` "" = the whole show) and orders per
        region and SKU; orders without a SKU say nothing about stock."""
        for s in samples:
            if s.show_id != self.show.show_id:
                continue
            self._last_business_ts = max(self._last_business_ts or s.ts, s.ts)
            if s.viewers_online is not None:
                series = self._viewers.setdefault(s.region, deque(maxlen=_MAX_SERIES))
                series.append((s.ts, s.viewers_online))
            if s.orders is None or not s.sku or not self._wants_sku(s.sku):
                continue
            if self._first_sku_orders_ts is None or s.ts < self._first_sku_orders_ts:
                self._first_sku_orders_ts = s.ts
            wh = self._warehouse_for(s.region)
            if wh is None:
                self.unattributed_orders += s.orders
                continue
            pair = (s.sku, wh)
            self._orders.setdefault(pair, deque(maxlen=_MAX_SERIES)).append((s.ts, s.orders))
            self._orders_total[pair] = self._orders_total.get(pair, 0) + s.orders

    def _warehouse_for(self, region: str) -> str | None:
        if region:
            return self._serving.get(region)
        wh_set = set(self._serving.values())
        return next(iter(wh_set)) if len(wh_set) == 1 else None

    def add_on_screen(self, events: Iterable[OnScreen]) -> None:
        for ev in events:
            if ev.show_id != self.show.show_id:
                continue
            last = self._on_screen.get(ev.sku)
            if last is None or ev.ts >= last[0]:
                self._on_screen[ev.sku] = (ev.ts, ev.on)

    def set_shared_demand(self, source: str, demand: Mapping[Pair, Demand]) -> None:
        """Demand on the same stock from another live room (``source``, e.g.
        its show id), as that room's ``demand()`` returned it. It is added to
        this show's own so a warehouse shared by several rooms is judged
        against all of them (rooms selling one stock must not oversell it).
        Replaces what the same source gave before."""
        self._shared[source] = dict(demand)

    def demand(self) -> dict[Pair, Demand]:
        """This show's own demand per (sku, warehouse) as of the last step."""
        return dict(self._own_demand)

    # --- evaluation ------------------------------------------------------

    def _pairs(self) -> list[Pair]:
        skus = list(self._skus) or sorted({p[0] for p in self._figures})
        return [(sku, wh) for sku in skus for wh in self._warehouses]

    def _velocity(self, pair: Pair, now: float) -> float | None:
        cfg = self.config
        if self._first_sku_orders_ts is None or self._last_business_ts is None:
            return None
        if now - self._last_business_ts > cfg.business_stale_after_s:
            return None
        since = now - cfg.velocity_window_s
        series = self._orders.get(pair)
        while series and series[0][0] <= since:
            series.popleft()
        sold = sum(n for _, n in series) if series else 0
        span_s = min(max(now - self._first_sku_orders_ts, cfg.min_velocity_span_s),
                     cfg.velocity_window_s)
        return sold / (span_s / 60.0)

    def _viewer_levels(self, regions: list[str], now: float) -> tuple[float, float] | None:
        since = now - self.config.velocity_window_s
        now_total = 0.0
        mean_total = 0.0
        found = False
        for region in regions:
            series = self._viewers.get(region)
            while series and series[0][0] <= since and len(series) > 1:
                series.popleft()  # keep the latest level even when it is old
            if not series:
                continue
            found = True
            now_total += series[-1][1]
            in_window = [v for ts, v in series if ts > since] or [series[-1][1]]
            mean_total += sum(in_window) / len(in_window)
        return (now_total, mean_total) if found else None

    def _viewers_for(self, wh: str, now: float) -> tuple[float, float] | None:
        served = [r for r, w in self._serving.items() if w == wh]
        found = self._viewer_levels(served, now)
        if found is None:
            # Only whole-show viewer counts: their trend still scales this
            # warehouse's velocity, since only the ratio now/mean matters.
            found = self._viewer_levels([""], now)
        return found

    def _is_on_screen(self, sku: str) -> bool:
        entry = self._on_screen.get(sku)
        return bool(entry and entry[1])

    def _stale(self, wh: str, now: float) -> bool:
        cfg = self.config
        src = self._wh_source_ts.get(wh)
        if src is None:
            return False
        if now - src > self.stale_after_s(wh):
            return True
        lag_limit = cfg.max_sync_lag_s
        if not lag_limit:
            return False
        return self._wh_lag_s.get(wh, 0.0) > lag_limit

    def step(self, now: float) -> list[StockState]:
        """Re-judge every SKU x warehouse at ``now``. Returns the states whose
        level, action or on-screen flag changed since the last step, and the
        first state of each pair."""
        cfg = self.config
        remaining = remaining_minutes(self.show, now, cfg)
        viewers = {wh: self._viewers_for(wh, now) for wh in self._warehouses}
        changed: list[StockState] = []
        own: dict[Pair, Demand] = {}
        for pair in self._pairs():
            wh = pair[1]
            velocity = self._velocity(pair, now)
            v = viewers[wh]
            fc = forecast_units(velocity, v[0] if v else None, v[1] if v else None,
                                remaining, cfg)
            own[pair] = Demand(velocity, fc)
            total = own[pair]
            for shared in self._shared.values():
                if pair in shared:
                    total = total + shared[pair]
            state = self._judge(pair, now, total, remaining)
            self._states[pair] = state
            key = (state.level, state.action, state.on_screen)
            if self._emitted.get(pair) != key:
                self._emitted[pair] = key
                changed.append(state)
        self._own_demand = own
        return changed

    def _judge(self, pair: Pair, now: float, demand: Demand, remaining_min: float) -> StockState:
        cfg = self.config
        sku, wh = pair
        on_screen = self._is_on_screen(sku)
        fig = self._figures.get(pair)
        src = self._wh_source_ts.get(wh)
        left = None if fig is None else levels.minutes_left(fig.on_hand, demand.velocity_per_min)

        def make(level: StockLevel, action: str, refill: int | None = None) -> StockState:
            return StockState(
                ts=now,
                show_id=self.show.show_id,
                sku=sku,
                warehouse=wh,
                level=level,
                on_hand=None if fig is None else fig.on_hand,
                velocity_per_min=_round(demand.velocity_per_min),
                forecast_units=_round(demand.forecast_units),
                minutes_left=_round(left),
                data_age_s=None if src is None else round(max(0.0, now - src), 3),
                on_screen=on_screen,
                action=action,
                refill_units=refill,
            )

        if fig is None:
            return make(StockLevel.UNKNOWN, levels.NO_STOCK_ACTION)
        if fig.fault is not None:
            if self._explained(fig.fault.previous_on_hand, fig.fault.orders_at_previous,
                               self._orders_total.get(pair, 0)):
                fig.fault = None  # the orders caught up: a real sell-out
            else:
                return make(StockLevel.SYNC_FAULT, levels.SYNC_FAULT_ACTION)
        if self._stale(wh, now):
            return make(StockLevel.STALE, levels.STALE_ACTION)
        if demand.forecast_units is None:
            if not (fig.on_hand == 0 and on_screen):
                return make(StockLevel.UNKNOWN, levels.NO_DEMAND_ACTION)
            level = StockLevel.RED  # sold out on screen needs no forecast
        else:
            level = levels.stock_level(fig.on_hand, demand.forecast_units,
                                       demand.velocity_per_min, cfg, on_screen=on_screen,
                                       previous=self._stock_levels.get(pair),
                                       remaining_min=remaining_min)
        self._stock_levels[pair] = level
        refill = None
        if level in (StockLevel.ORANGE, StockLevel.RED):
            refill = self._refill(sku, fig.on_hand, demand)
        return make(level, levels.action_for(level, fig.on_hand), refill)

    def _refill(self, sku: str, on_hand: int, demand: Demand) -> int | None:
        cfg = self.config
        daily = cfg.daily_units.get(sku)
        if daily is None and demand.velocity_per_min is not None and cfg.selling_min_per_day:
            daily = demand.velocity_per_min * cfg.selling_min_per_day
        if daily is None:
            daily = 0.0
        abc = self._skus[sku].abc_class if sku in self._skus else "B"
        return refill_units(on_hand=on_hand, forecast_units=demand.forecast_units or 0.0,
                            daily_units=daily, abc_class=abc, tier=cfg.refill_tier,
                            config=cfg)

    # --- views -----------------------------------------------------------

    def states(self) -> list[StockState]:
        """The state of every SKU x warehouse as of the last ``step``."""
        return list(self._states.values())

    def region_view(self, region: str) -> list[RegionStock]:
        """Per SKU, as of the last ``step``: the region's warehouses (serving
        one first) and the totals. Raises KeyError for a region the show does
        not map to warehouses."""
        if region not in self.show.region_warehouses:
            raise KeyError(f"region {region!r} has no warehouses in show "
                           f"{self.show.show_id!r}")
        region_whs = self.show.region_warehouses[region]
        skus = list(dict.fromkeys(sku for sku, _ in self._states))
        out: list[RegionStock] = []
        for sku in skus:
            by_wh = {wh: st for (s, wh), st in self._states.items() if s == sku}
            mine = [by_wh[wh] for wh in region_whs if wh in by_wh]
            serving_wh = region_whs[0] if region_whs else None
            serving = by_wh.get(serving_wh) if serving_wh else None
            known_all = [st.on_hand for st in by_wh.values() if st.on_hand is not None]
            known_region = [st.on_hand for st in mine if st.on_hand is not None]
            total = sum(known_all) if known_all else None
            out.append(RegionStock(
                region=region,
                sku=sku,
                serving_warehouse=serving_wh,
                serving=serving,
                warehouses=mine,
                region_on_hand=sum(known_region) if known_region else None,
                total_on_hand=total,
                unknown_warehouses=[wh for wh, st in by_wh.items() if st.on_hand is None],
                serving_empty_elsewhere_stocked=bool(
                    serving is not None and serving.on_hand == 0 and total
                ),
            ))
        return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
