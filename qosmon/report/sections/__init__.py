"""The report's sections, each a typed view of the show's data.

``build_sections(data, now)`` turns a show's data (up to ``now`` for a show
still running) into :class:`ReportViews`; ``qosmon.report.render`` renders
any subset of them with the report's styles and charts. Each section is a
module with a ``build(ctx) -> View`` function and a template partial
``templates/sections/<name>.html.j2`` that renders its ``view``.

A report is in one language (``lang``, English by default): the views hold
their words and charts already in it, and rendering keeps to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from qosmon.i18n import DEFAULT_LANGUAGE
from qosmon.report.data import ShowData
from qosmon.report.sections import headline, incidents, injected, probes, regions, stock, timeline
from qosmon.report.sections.context import ReportContext, report_context
from qosmon.report.sections.headline import HeadlineView
from qosmon.report.sections.incidents import IncidentsView
from qosmon.report.sections.injected import InjectedView
from qosmon.report.sections.probes import ProbesView
from qosmon.report.sections.regions import RegionsView
from qosmon.report.sections.stock import StockView
from qosmon.report.sections.timeline import TimelineView
from qosmon.report.verdict import ReportThresholds

# In page order. "injected" exists for demo shows only.
SECTIONS: tuple[str, ...] = (
    "headline", "timeline", "regions", "incidents", "stock", "probes", "injected",
)


@dataclass(frozen=True)
class ReportViews:
    """The sections of one report; a section not asked for is None."""

    context: ReportContext
    headline: HeadlineView | None = None
    timeline: TimelineView | None = None
    regions: RegionsView | None = None
    incidents: IncidentsView | None = None
    stock: StockView | None = None
    probes: ProbesView | None = None
    injected: InjectedView | None = None

    def view(self, name: str) -> object | None:
        if name not in SECTIONS:
            raise ValueError(f"no report section {name!r}; one of: {', '.join(SECTIONS)}")
        return getattr(self, name)


def build_sections(
    data: ShowData,
    now: float | None = None,
    thresholds: ReportThresholds | None = None,
    only: Iterable[str] | None = None,
    *,
    lang: str = DEFAULT_LANGUAGE,
    zones: dict[str, str] | None = None,
) -> ReportViews:
    """The views of ``only`` these sections (default: all) of the show up to
    ``now`` (for a show still running; an ended show covers its whole
    length), in ``lang`` ("en" or "zh"), with each region's local time from
    ``zones`` (region -> IANA zone) over the built-in table. Pure: data and
    time in, views out. An unknown language raises
    :class:`qosmon.i18n.LanguageError` (a ``ValueError``)."""
    names = SECTIONS if only is None else tuple(only)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"no report section {unknown[0]!r}; one of: {', '.join(SECTIONS)}")
    ctx = report_context(data, now, thresholds, lang, zones)
    return ReportViews(
        context=ctx,
        headline=headline.build(ctx) if "headline" in names else None,
        timeline=timeline.build(ctx) if "timeline" in names else None,
        regions=regions.build(ctx) if "regions" in names else None,
        incidents=incidents.build(ctx) if "incidents" in names else None,
        stock=stock.build(ctx) if "stock" in names else None,
        probes=probes.build(ctx) if "probes" in names else None,
        injected=injected.build(ctx) if "injected" in names else None,
    )


__all__ = [
    "SECTIONS", "HeadlineView", "IncidentsView", "InjectedView", "ProbesView", "RegionsView",
    "ReportContext", "ReportViews", "StockView", "TimelineView", "build_sections",
]
