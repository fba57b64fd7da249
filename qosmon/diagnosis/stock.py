"""Stock rules: which on-screen SKU is out, low or untrustworthy where viewers
buy.

A region buys from the warehouses ``Show.region_warehouses`` lists for it. For
each SKU on screen (its latest ``StockState`` says ``on_screen``):

- any serving warehouse ``stale`` or ``sync_fault``        -> stale_inventory
- the region's own (first) warehouse has 0 on hand, or
  every serving warehouse with a figure has                -> stock_out
- the best serving warehouse is at a low level (red)       -> low_stock

The first warehouse is the one the region's orders ship from (as the
inventory tracker counts them): when it is empty, viewers there cannot buy
even though another warehouse may still hold stock; the evidence names that
stock, since moving fulfilment is the fix.

A warehouse that serves no listed region is reported with scope
``{"warehouse": W}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from qosmon.diagnosis.config import DiagnosisConfig
from qosmon.model import Cause, LevelKind, Show, StockLevel, StockState


@dataclass(frozen=True)
class StockFinding:
    cause: Cause
    sku: str
    region: str | None  # None: a warehouse serving no listed region
    states: tuple[StockState, ...]  # the serving warehouses' latest states


def stock_findings(
    show: Show, latest: dict[tuple[str, str], StockState], cfg: DiagnosisConfig
) -> list[StockFinding]:
    """``latest`` maps (sku, warehouse) to its most recent state."""
    low_levels = {StockLevel(x) for x in cfg.stock.low_stock_levels}
    on_screen = sorted({sku for (sku, _), st in latest.items() if st.on_screen})
    out: list[StockFinding] = []
    served: set[str] = set()
    for region, warehouses in sorted(show.region_warehouses.items()):
        served.update(warehouses)
        for sku in on_screen:
            states = tuple(latest[(sku, w)] for w in warehouses if (sku, w) in latest)
            if not states:
                continue
            finding = _judge(sku, region, states, low_levels, primary=warehouses[0])
            if finding is not None:
                out.append(finding)
    for (sku, warehouse), st in sorted(latest.items()):
        if warehouse in served or not st.on_screen:
            continue
        finding = _judge(sku, None, (st,), low_levels)
        if finding is not None:
            out.append(finding)
    return out


def _judge(
    sku: str,
    region: str | None,
    states: tuple[StockState, ...],
    low_levels: set[StockLevel],
    primary: str | None = None,
) -> StockFinding | None:
    bad = tuple(s for s in states if s.level.kind is LevelKind.DATA_FAULT)
    if bad:
        return StockFinding(Cause.STALE_INVENTORY, sku, region, bad)
    figures = [s for s in states if s.on_hand is not None]
    own = next((s for s in figures if s.warehouse == primary), None)
    if (own is not None and own.on_hand == 0) or (figures and all(s.on_hand == 0 for s in figures)):
        return StockFinding(Cause.STOCK_OUT, sku, region, states)
    ranked = [s for s in states if s.level.kind is LevelKind.STOCK]
    if ranked:
        best = min(ranked, key=lambda s: s.level.severity)
        if best.level in low_levels:
            return StockFinding(Cause.LOW_STOCK, sku, region, states)
    return None


def deciding_states(f: StockFinding, cfg: DiagnosisConfig) -> list[StockState]:
    """The states that made the finding: its onset is when they began, not
    when a still-stocked backup warehouse last changed level."""
    if f.cause == Cause.STOCK_OUT:
        out = [st for st in f.states if st.on_hand == 0]
    elif f.cause == Cause.LOW_STOCK:
        low = set(cfg.stock.low_stock_levels)
        out = [st for st in f.states if st.level.value in low]
    else:
        out = []
    return out or list(f.states)
