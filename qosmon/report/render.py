"""Render a report's sections into HTML: the whole show report, or a chosen
subset of sections inside another page with the same styles and charts.

Everything a page needs is inline (styles, SVG charts); it has no script
and asks nothing of the network. Outside text is escaped by jinja2's
autoescape; chart text is escaped where the SVG is built. Writing files
(names, index) is :mod:`qosmon.report.output`'s.

A page is in the language its views were built in (``build_sections(...,
lang=)``): the templates' words go through the same translator as the
views' (keyed by the English wording), and ``<html lang>`` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from qosmon import __version__
from qosmon.i18n import DEFAULT_LANGUAGE, HTML_LANG, check_language, translator
from qosmon.report import charts
from qosmon.report.data import ShowData
from qosmon.report.experience import WEIGHTS
from qosmon.report.sections import SECTIONS, ReportViews, build_sections
from qosmon.report.timing import duration_text, utc
from qosmon.report.verdict import ReportThresholds
from qosmon.report.vocabulary import STATUS_ORDER

# Section -> (page anchor, table-of-contents label); the headline has none.
_NAV = {
    "timeline": ("timeline", "Timeline"),
    "regions": ("regions", "Regions"),
    "incidents": ("incidents", "Incidents"),
    "stock": ("inventory", "Inventory"),
    "probes": ("probes", "Probes"),
    "injected": ("injected", "Found vs injected"),
}


@cache
def environment() -> jinja2.Environment:
    """The templates of every report page (sections, report, index)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("qosmon.report", "templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = charts.fmt_num
    env.filters["pct"] = lambda v: "–" if v is None else f"{v:.1f}%"
    env.filters["mins"] = lambda v: f"{v:.1f}"
    # English unless a render passes the page's own ``t`` (a page of its own
    # that includes the report's templates still renders).
    env.globals["t"] = translator(DEFAULT_LANGUAGE)
    env.globals["statuses"] = STATUS_ORDER
    env.globals["version"] = __version__
    env.globals["score_weights"] = list(WEIGHTS.items())
    return env


def page_style() -> Markup:
    """The report's stylesheet, for a ``<style>`` element of another page."""
    return Markup(environment().get_template("style.css.j2").render())


def _views_language(views: ReportViews, lang: str | None) -> str:
    """The views' language; asking for another one is a mistake (their
    charts and words are already written)."""
    built = views.context.lang
    if lang is not None and check_language(lang) != built:
        raise ValueError(f"these views are in {built!r}; build them with "
                         f"build_sections(..., lang={lang!r}) for a page in {lang!r}")
    return built


def render_sections(views: ReportViews, names: Sequence[str] = SECTIONS,
                    lang: str | None = None) -> list[Markup]:
    """The HTML of each of ``names`` that ``views`` holds, in that order
    (sections not built, or without content such as found-vs-injected on a
    show that is not a demo, are left out), in the views' language
    (``lang``, when given, must be that one). A page showing them needs
    :func:`page_style` and ``charts.svg_defs()`` once."""
    t = translator(_views_language(views, lang))
    env = environment()
    out = []
    for name in names:
        view = views.view(name)
        if view is not None:
            out.append(Markup(env.get_template(f"sections/{name}.html.j2").render(
                view=view, t=t)))
    return out


def render_page(
    views: ReportViews,
    names: Sequence[str] = SECTIONS,
    *,
    kind: str = "show report",
    refresh_s: int | None = None,
    history_href: str | None = None,
    lang: str | None = None,
) -> str:
    """A whole self-contained page of the chosen sections. ``refresh_s``
    makes the browser reload it (a page of a show still running);
    ``history_href`` links the page to the history across shows; ``kind``
    is said in the page's language where the catalogue has it. The page is
    in the views' language (``lang``, when given, must be that one)."""
    ctx = views.context
    lang = _views_language(views, lang)
    t = translator(lang)
    nav = []
    for name in names:
        if name in _NAV and views.view(name) is not None:
            anchor, label = _NAV[name]
            label = t(label)
            if name == "incidents":
                label = f"{label} ({len(ctx.incidents)})"
            nav.append((anchor, label))
    return environment().get_template("report.html.j2").render(
        t=t, html_lang=HTML_LANG[lang], lang=lang,
        show=ctx.data.show, kind=kind, refresh_s=refresh_s, live=ctx.live,
        start=utc(ctx.span.t0), end=utc(ctx.span.t1), n_probes=len(ctx.table.probes),
        n_regions=len(ctx.regions), n_samples=len(ctx.table), nav=nav,
        sections=render_sections(views, names), defs=charts.svg_defs(),
        history_href=history_href,
    )


def build_report(
    data: ShowData, thresholds: ReportThresholds | None = None, now: float | None = None,
    history_href: str | None = None, lang: str = DEFAULT_LANGUAGE,
    zones: dict[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The whole report page in ``lang`` and the show's line for the index."""
    views = build_sections(data, now, thresholds, lang=lang, zones=zones)
    assert views.headline is not None  # every section was asked for
    return render_page(views, history_href=history_href), views.headline.index_entry()


def render_report(data: ShowData, thresholds: ReportThresholds | None = None,
                  lang: str = DEFAULT_LANGUAGE) -> str:
    """One self-contained HTML document for the show."""
    return build_report(data, thresholds, lang=lang)[0]


def render_index(rows: Sequence[dict[str, Any]], has_history: bool,
                 lang: str = DEFAULT_LANGUAGE) -> str:
    """The folder's index page (``index.html``) of the reports' index rows."""
    t = translator(lang)

    def duration(row: dict[str, Any]) -> str:
        seconds = row.get("duration_s")
        if isinstance(seconds, int | float):
            return duration_text(float(seconds), t)
        return str(row.get("duration", "–"))

    return environment().get_template("index.html.j2").render(
        t=t, html_lang=HTML_LANG[lang], reports=rows, duration=duration,
        status_fill=charts.STATUS_FILL, defs=charts.svg_defs(), has_history=has_history,
    )
