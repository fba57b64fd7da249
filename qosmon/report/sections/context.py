"""What every section of a report starts from: the show's data up to a
moment, put on the show's time grid once (probe table, region verdicts,
incident numbers, business figures), so sections do not each redo it.
It also holds the page's language: every word a section puts in a view or
draws on a chart goes through ``ctx.t``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qosmon.i18n import DEFAULT_LANGUAGE, check_language, translator
from qosmon.model import STOCK_CAUSES, BusinessSample, Cause, Incident
from qosmon.regions import check_zone, region_zone
from qosmon.report.charts import Band
from qosmon.report.data import ShowData
from qosmon.report.signals import (
    BoolArray,
    FloatArray,
    IntArray,
    ProbeTable,
    per_second,
    second_slots,
)
from qosmon.report.timing import Span, Translate, english, show_span, utc_and_local
from qosmon.report.verdict import (
    RegionVerdict,
    ReportThresholds,
    excluded_mask,
    region_verdicts,
    starved_mask,
)
from qosmon.report.vocabulary import cause_label

N_BUCKETS = 320  # points per chart: about two per pixel column at full width


@dataclass(frozen=True)
class BusinessFigures:
    """The platform's figures per region on the show's second grid."""

    regions: list[str]  # "" = the whole show, when only totals were sent
    viewers: FloatArray  # (region, second): last known level, NaN before the first
    sec: IntArray  # per counter row: its second, region index and counts
    region_idx: IntArray
    orders: FloatArray
    chat: FloatArray

    @property
    def total_viewers(self) -> FloatArray:
        """Viewers online per second over all regions (NaN where none knew)."""
        if not len(self.regions):
            return np.zeros(0)
        known = ~np.isnan(self.viewers)
        out: FloatArray = np.where(known.any(axis=0), np.nansum(self.viewers, axis=0), np.nan)
        return out


def business_figures(samples: list[BusinessSample], span: Span,
                     regions: list[str]) -> BusinessFigures:
    """Per-region figures (or the whole-show series when the platform only
    sent totals), each region on its own aligned second grid: regions
    report on different sub-second offsets, and summing rows by exact
    timestamp would add up partial totals."""
    rows = [s for s in samples if not s.sku]
    per_region = [s for s in rows if s.region]
    rows = per_region or [s for s in rows if not s.region]
    rows.sort(key=lambda s: s.ts)
    names = [r for r in regions if any(s.region == r for s in rows)] if per_region else [""]
    names += sorted({s.region for s in rows} - set(names))
    codes = {r: i for i, r in enumerate(names)}
    n_s = max(1, int(np.rint(span.seconds)))
    ts = np.array([s.ts for s in rows], dtype=float)
    ridx = np.array([codes[s.region] for s in rows], dtype=np.int64)
    # Counters cover the interval ending at ts: second k ends at t0 + k + 1.
    sec = second_slots(ts, ridx, span.t0) if len(rows) else np.zeros(0, np.int64)
    viewers = np.array([np.nan if s.viewers_online is None else s.viewers_online for s in rows],
                       dtype=float)
    level = np.full((len(names), n_s), np.nan)
    for i in range(len(names)):
        m = ridx == i
        level[i] = per_second(np.clip(sec[m], 0, n_s - 1), viewers[m], n_s)
    return BusinessFigures(
        regions=names if rows else [], viewers=level if rows else np.zeros((0, n_s)), sec=sec,
        region_idx=ridx,
        orders=np.array([np.nan if s.orders is None else s.orders for s in rows], dtype=float),
        chat=np.array([np.nan if s.chat_messages is None else s.chat_messages for s in rows],
                      dtype=float),
    )


@dataclass(frozen=True)
class ReportContext:
    data: ShowData
    th: ReportThresholds
    span: Span
    live: bool  # the show has not ended: open incidents are still going on
    table: ProbeTable
    regions: list[str]
    incidents: list[Incident]  # in order of start; numbered from 1 in this order
    numbers: dict[str, int]  # incident id -> its number on the page
    local: list[Incident]  # probe-local incidents, left out of the verdicts
    # Probe samples left out of the verdicts: inside a probe-local incident,
    # or of a second in which the probe itself was starved (``starved``).
    excluded: BoolArray
    verdicts: list[RegionVerdict]
    business: BusinessFigures
    bands: list[Band]  # every incident, for charts of the whole show
    starved: BoolArray
    lang: str = DEFAULT_LANGUAGE
    zones: dict[str, str] = field(default_factory=dict)  # region -> zone, over the defaults

    @property
    def t(self) -> Translate:
        """The page's translator: English text -> text in ``lang``."""
        return translator(self.lang)

    def clock(self, ts: float | None, region: str | None) -> str:
        """A moment in UTC, with the region's local time next to it."""
        zone = region_zone(region, self.zones) if region else "UTC"
        return utc_and_local(ts, zone, self.t)

    def incident_end(self, inc: Incident) -> float:
        return inc.end_ts if inc.end_ts is not None else self.span.t1

    def region_bands(self, region: str) -> list[Band]:
        """The stream incidents of one region (or of the whole show)."""
        return incident_bands(self.incidents, self.numbers, self.span.t1, region, self.t)


def incident_bands(incidents: list[Incident], numbers: dict[str, int], t1: float,
                   region: str | None = None, t: Translate = english) -> list[Band]:
    out = []
    for inc in incidents:
        stock = inc.cause in STOCK_CAUSES
        if region is not None and (stock or inc.scope.get("region") not in (region, None)):
            continue
        n = numbers[inc.incident_id]
        where = inc.scope.get("region") or t("all regions")
        out.append(Band(
            start=inc.start_ts, end=inc.end_ts if inc.end_ts is not None else t1,
            label=f"#{n}", ref=f"incident-{n}",
            title=f"#{n} {t(cause_label(inc.cause))} — {where}",
            marker=stock,
        ))
    return out


def data_until(data: ShowData, t: float) -> ShowData:
    """The show as it was known at ``t``: nothing stamped later, and an
    incident that ended later still open."""
    return ShowData(
        show=data.show,
        probe_samples=[s for s in data.probe_samples if s.ts <= t],
        business=[b for b in data.business if b.ts <= t],
        stock_states=[s for s in data.stock_states if s.ts <= t],
        on_screen=[e for e in data.on_screen if e.ts <= t],
        incidents=[i if i.end_ts is None or i.end_ts <= t else i.model_copy(update={"end_ts": None})
                   for i in data.incidents if i.start_ts <= t],
        deliveries=[d for d in data.deliveries if d.ts <= t],
        injected=data.injected,
    )


def report_context(data: ShowData, now: float | None = None,
                   thresholds: ReportThresholds | None = None, lang: str = DEFAULT_LANGUAGE,
                   zones: dict[str, str] | None = None) -> ReportContext:
    """The shared ground of a report on ``data`` up to ``now`` (the show's
    end once it has ended; data stamped after ``now`` is left out), in
    ``lang`` with regions' local times from ``zones`` over the defaults."""
    check_language(lang)
    for zone in (zones or {}).values():
        check_zone(zone)  # refused here, not half way through a page
    th = thresholds or ReportThresholds()
    show = data.show
    if show.end_ts is None and now is not None:
        data = data_until(data, now)
    span = show_span(data, now)
    table = ProbeTable.from_samples(data.probe_samples, show.regions, t0=span.t0)
    regions = list(show.regions) or list(table.regions)
    for r in table.regions:
        if r not in regions:
            regions.append(r)
    incidents = sorted(data.incidents, key=lambda i: (i.start_ts, i.incident_id))
    numbers = {inc.incident_id: n for n, inc in enumerate(incidents, start=1)}
    local = [i for i in incidents if i.cause == Cause.PROBE_LOCAL]
    windows = [
        (p, i.start_ts, i.end_ts if i.end_ts is not None else span.t1)
        for i in local for p in i.probes
    ]
    starved = starved_mask(table, th)
    excluded = excluded_mask(table, windows) | starved
    return ReportContext(
        data=data, th=th, span=span, live=show.end_ts is None, table=table, regions=regions,
        incidents=incidents, numbers=numbers, local=local, excluded=excluded,
        verdicts=region_verdicts(table, span.t0, span.t1, regions, th, excluded),
        business=business_figures(data.business, span, regions),
        bands=incident_bands(incidents, numbers, span.t1, t=translator(lang)),
        starved=starved, lang=lang, zones=dict(zones or {}),
    )

