"""The stock section: the alert level of each SKU in each warehouse over the
show, and the actions suggested on the way. Also the on-screen SKUs' level
and units, which the timeline shows next to the audience."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup

from qosmon.model import StockLevel, StockState
from qosmon.report import charts
from qosmon.report.charts import Lane, Series
from qosmon.report.sections.context import ReportContext
from qosmon.report.timing import utc_time
from qosmon.report.vocabulary import LEVEL_TEXT

# A lane's state is the level's key; charts name it by the report's word.
_LEVEL_KEYS: dict[str, str] = {str(lv): text for lv, text in LEVEL_TEXT.items()}


@dataclass(frozen=True)
class ActionRow:
    ts: float
    time: str  # UTC
    into: str  # h:mm into the show
    sku: str
    name: str
    warehouse: str
    level: StockLevel
    level_text: str  # in words
    swatch: str  # the level's plain colour
    on_hand: int | None
    minutes_left: float | None
    action: str  # the tracker's suggestion, as it wrote it
    refill_units: int | None
    on_screen: bool


@dataclass(frozen=True)
class StockView:
    heat: Markup  # level per SKU x warehouse over the show; empty without states
    actions: list[ActionRow]  # urgent: someone should act now
    watch_actions: list[ActionRow]  # the rest, folded
    level_legend: list[tuple[str, str]]  # (level text, fill), in the model's order


@dataclass(frozen=True)
class _States:
    names: dict[str, str]  # sku -> its name
    states: list[StockState]  # by time
    by_key: dict[tuple[str, str], list[StockState]]
    keys: list[tuple[str, str]]  # (sku, warehouse) in the show's SKU order
    sku_order: list[str]
    on_spans: dict[str, list[tuple[float, float]]]  # sku -> times on screen


def _states(ctx: ReportContext) -> _States:
    data, span = ctx.data, ctx.span
    states = sorted(data.stock_states, key=lambda s: s.ts)
    by_key: dict[tuple[str, str], list[StockState]] = defaultdict(list)
    for st in states:
        by_key[(st.sku, st.warehouse)].append(st)
    sku_order = [s.sku for s in data.show.skus]
    sku_order += sorted({k[0] for k in by_key} - set(sku_order))
    keys = sorted(by_key, key=lambda k: (sku_order.index(k[0]), k[1]))
    # On-screen spans per SKU from the on/off events.
    on_spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    opened: dict[str, float] = {}
    for ev in sorted(data.on_screen, key=lambda e: e.ts):
        if ev.on:
            opened.setdefault(ev.sku, ev.ts)
        elif ev.sku in opened:
            on_spans[ev.sku].append((opened.pop(ev.sku), ev.ts))
    for sku, s in opened.items():
        on_spans[sku].append((s, span.t1))
    return _States(names={s.sku: s.name for s in data.show.skus}, states=states,
                   by_key=dict(by_key), keys=keys, sku_order=sku_order, on_spans=dict(on_spans))


def _heat(ctx: ReportContext, st: _States) -> Markup:
    lanes, marks = [], []
    for i, (sku, wh) in enumerate(st.keys):
        rows = st.by_key[(sku, wh)]
        runs: list[tuple[float, float, str]] = []
        for j, s in enumerate(rows):
            end = rows[j + 1].ts if j + 1 < len(rows) else ctx.span.t1
            if runs and runs[-1][2] == s.level:
                runs[-1] = (runs[-1][0], end, s.level)
            else:
                runs.append((s.ts, end, s.level))
        name = st.names.get(sku, "")
        lanes.append(Lane(label=f"{sku} · {wh}", runs=runs,
                          title=ctx.t("{sku} {name} in {warehouse}").format(
                              sku=sku, name=name, warehouse=wh).replace("  ", " ")))
        for a, b in st.on_spans.get(sku, []):
            marks.append((i, a, b))
    if not lanes:
        return Markup("")
    return charts.lanes_chart(ctx.span.t0, ctx.span.t1, lanes, charts.LEVEL_FILL,
                              title=ctx.t("stock alert level per SKU and warehouse"), bands=[],
                              marks=marks, label_w=220, state_text=_LEVEL_KEYS, t=ctx.t)


def _on_screen_skus(st: _States) -> list[str]:
    return [s for s in st.sku_order if st.on_spans.get(s)]


def _on_screen_lanes(ctx: ReportContext, st: _States) -> Markup:
    """Per SKU shown: its worst level over its warehouses, outlined while on
    screen."""
    sku_lanes, sku_marks = [], []
    for i, sku in enumerate(_on_screen_skus(st)):
        per_ts: dict[float, list[StockState]] = defaultdict(list)
        for s in st.states:
            if s.sku == sku:
                per_ts[s.ts].append(s)
        times = sorted(per_ts)
        latest: dict[str, StockLevel] = {}
        runs: list[tuple[float, float, str]] = []
        for j, ts in enumerate(times):
            for s in per_ts[ts]:
                latest[s.warehouse] = s.level
            worst = max(latest.values(), key=lambda lv: lv.severity)
            end = times[j + 1] if j + 1 < len(times) else ctx.span.t1
            if runs and runs[-1][2] == worst:
                runs[-1] = (runs[-1][0], end, worst)
            else:
                runs.append((ts, end, worst))
        sku_lanes.append(Lane(label=sku, runs=runs, title=f"{sku} {st.names.get(sku, '')}"))
        for a, b in st.on_spans[sku]:
            sku_marks.append((i, a, b))
    if not sku_lanes:
        return Markup("")
    return charts.lanes_chart(
        ctx.span.t0, ctx.span.t1, sku_lanes, charts.LEVEL_FILL,
        title=ctx.t("stock level (worst warehouse) of SKUs shown; outlined: on screen"),
        bands=ctx.bands, marks=sku_marks, state_text=_LEVEL_KEYS, t=ctx.t)


def _units_chart(ctx: ReportContext, st: _States) -> Markup:
    """Units on hand over the show, per SKU shown (sum over its warehouses)."""
    series = []
    for k, sku in enumerate(_on_screen_skus(st)):
        latest_units: dict[str, int] = {}
        ts_list: list[float] = []
        v_list: list[float] = []
        for s in st.states:
            if s.sku != sku or s.on_hand is None:
                continue
            latest_units[s.warehouse] = s.on_hand
            if ts_list and ts_list[-1] == s.ts:
                # Several warehouses report at once: one point with their sum.
                v_list[-1] = float(sum(latest_units.values()))
            else:
                ts_list.append(s.ts)
                v_list.append(float(sum(latest_units.values())))
        if ts_list:  # the last figure holds until the show ends
            ts_list.append(max(ctx.span.t1, ts_list[-1]))
            v_list.append(v_list[-1])
        series.append(Series(name=f"{sku} {st.names.get(sku, '')}".strip(),
                             t=np.array(ts_list), v=np.array(v_list), step=True,
                             colour=charts.SERIES_COLOURS[k % 7]))
    if not series:
        return Markup("")
    return charts.time_chart(ctx.span.t0, ctx.span.t1, series,
                             title=ctx.t("units on hand, SKUs shown"), unit=ctx.t("units"),
                             bands=ctx.bands, height=160, t=ctx.t)


def on_screen_charts(ctx: ReportContext) -> tuple[Markup, Markup]:
    """(level lanes, units on hand) of the SKUs shown, for the timeline."""
    st = _states(ctx)
    return _on_screen_lanes(ctx, st), _units_chart(ctx, st)


def _actions(ctx: ReportContext, st: _States) -> list[ActionRow]:
    """Each time a SKU x warehouse enters a level with a suggested action."""
    out: list[ActionRow] = []
    for sku, wh in st.keys:
        prev = None
        for s in st.by_key[(sku, wh)]:
            key = (s.level, s.action)
            if key != prev and s.action:
                out.append(ActionRow(
                    ts=s.ts, time=utc_time(s.ts), into=charts.fmt_clock(s.ts - ctx.span.t0),
                    sku=sku, name=st.names.get(sku, ""), warehouse=wh, level=s.level,
                    level_text=ctx.t(LEVEL_TEXT[s.level]), swatch=charts.LEVEL_SWATCH[s.level],
                    on_hand=s.on_hand, minutes_left=s.minutes_left, action=s.action,
                    refill_units=s.refill_units, on_screen=s.on_screen,
                ))
            prev = key
    out.sort(key=lambda a: a.ts)
    return out


def build(ctx: ReportContext) -> StockView:
    st = _states(ctx)
    actions = _actions(ctx, st)
    return StockView(
        heat=_heat(ctx, st),
        actions=[a for a in actions if a.level.urgent],
        watch_actions=[a for a in actions if not a.level.urgent],
        level_legend=[(ctx.t(LEVEL_TEXT[lv]), charts.LEVEL_FILL[lv]) for lv in StockLevel],
    )
