"""The regions section: each region's signals against their thresholds,
and time to first frame per region."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from markupsafe import Markup

from qosmon.report import charts
from qosmon.report.charts import Band, Series, Threshold
from qosmon.report.experience import ExperienceScore, experience_scores
from qosmon.report.sections.context import N_BUCKETS, ReportContext
from qosmon.report.signals import (
    FloatArray,
    ProbeTable,
    bucket_ratio,
    bucket_series,
    grid_for,
    session_ttffs,
)
from qosmon.report.timing import Span, Translate
from qosmon.report.verdict import RegionVerdict, ReportThresholds


@dataclass(frozen=True)
class RegionView:
    name: str
    verdict: RegionVerdict
    charts: list[tuple[str, Markup]]  # (caption, chart); empty without samples
    probes: list[str]
    sessions: int  # viewing sessions that got a first frame
    ttff_p50: float | None
    ttff_p90: float | None
    ttff_max: float | None
    slow: int  # sessions slower than the TTFF threshold
    score: ExperienceScore  # the viewer experience score, 0-100, and its parts


@dataclass(frozen=True)
class RegionsView:
    regions: list[RegionView]
    ttff_chart: Markup
    th: ReportThresholds


def _region_charts(
    table: ProbeTable, region: str, span: Span, bands: list[Band], th: ReportThresholds,
    t: Translate,
) -> list[tuple[str, Markup]]:
    """(caption, chart) for each signal of one region, against its threshold."""
    t0, t1 = span.t0, span.t1
    if region not in table.regions:
        return []
    m = table.region_idx == table.regions.index(region)
    sec = table.sec[m]
    grid = grid_for(t0, t1, N_BUCKETS // 2)
    c = charts.SERIES_COLOURS
    fmt = charts.fmt_num

    def line(name: str, arr: FloatArray, colour: str) -> list[Series]:
        return [Series.from_buckets(name, bucket_series(sec, arr, grid), colour)]

    def chart(caption: str, series: list[Series], unit: str, limit: Threshold,
              y_max: float | None = None) -> tuple[str, Markup]:
        return caption, charts.time_chart(
            t0, t1, series, title=f"{region}: {caption}", unit=unit, bands=bands,
            thresholds=[limit], width=charts.W_HALF, height=190, y_max=y_max, t=t,
        )

    # Frozen while it lasts (a stall's seconds as they pass; older probes
    # report a freeze in the second it ends, with its whole length).
    frozen = bucket_ratio(sec, np.minimum(table.frozen_ms[m], 1000.0),
                          np.full(int(m.sum()), 1000.0), grid)
    chat_lost = bucket_ratio(sec, table.chat_lost[m].astype(float),
                             table.chat_sent[m].astype(float), grid)
    return [
        chart(t("Round-trip time"), line(t("RTT, mean of probes"), table.rtt_ms[m], c[0]), "ms",
              Threshold(th.rtt_failed_ms,
                        t("fails at {v} ms").format(v=fmt(th.rtt_failed_ms)))),
        chart(t("Packet loss"), line(t("loss, mean of probes"), table.loss_pct[m], c[1]), "%",
              Threshold(th.loss_failed_pct,
                        t("fails above {v}%").format(v=fmt(th.loss_failed_pct)))),
        chart(t("Video bitrate"),
              line(t("bitrate, mean of probes"), table.bitrate_kbps[m], c[2]),
              "kbps", Threshold(th.bitrate_degraded_kbps,
                                t("degraded below {v} kbps").format(
                                    v=fmt(th.bitrate_degraded_kbps)),
                                bad_above=False)),
        chart(t("Freezes"),
              [Series.from_buckets(t("share of watch time frozen"), frozen, c[3])],
              t("% of time frozen"),
              Threshold(th.freeze_chart_pct, f"{fmt(th.freeze_chart_pct)}%")),
        chart(t("Chat delivery time"), line(t("chat round trip"), table.chat_rtt_ms[m], c[4]),
              "ms", Threshold(th.chat_rtt_degraded_ms,
                              t("slow above {v} ms").format(v=fmt(th.chat_rtt_degraded_ms)))),
        chart(t("Chat messages lost"),
              [Series.from_buckets(t("lost, % of sent"), chat_lost, c[5])],
              t("% of messages sent"),
              Threshold(th.chat_lost_chart_pct, f"{fmt(th.chat_lost_chart_pct)}%"), y_max=100.0),
    ]


def _pctl(v: FloatArray, q: float) -> float | None:
    return float(np.percentile(v, q)) if len(v) else None


def build(ctx: ReportContext) -> RegionsView:
    table, th = ctx.table, ctx.th
    ttff, ttff_region = session_ttffs(table)
    scores = {s.region: s for s in experience_scores(table, ctx.regions, ctx.excluded)}
    views: list[RegionView] = []
    per_region: list[tuple[str, FloatArray]] = []
    for v in ctx.verdicts:
        ri = table.regions.index(v.region) if v.region in table.regions else -1
        rt = ttff[ttff_region == ri]
        per_region.append((v.region, rt))
        views.append(RegionView(
            name=v.region, verdict=v,
            charts=_region_charts(table, v.region, ctx.span, ctx.region_bands(v.region), th,
                                  ctx.t),
            probes=sorted({table.probes[p] for p in
                           np.unique(table.probe_idx[table.region_idx == ri]).tolist()}),
            sessions=len(rt), ttff_p50=_pctl(rt, 50), ttff_p90=_pctl(rt, 90),
            ttff_max=float(rt.max()) if len(rt) else None, slow=int((rt > th.ttff_ms).sum()),
            score=scores[v.region],
        ))
    t = ctx.t
    ttff_chart = charts.cdf_chart(
        per_region, title=t("time to first frame, per region"),
        unit=t("time to first frame (ms)"),
        threshold=Threshold(th.ttff_ms, t("slow > {v} ms").format(v=charts.fmt_num(th.ttff_ms))),
        t=t,
    )
    return RegionsView(regions=views, ttff_chart=ttff_chart, th=th)
