"""The live page of a show: what on-call needs while it runs. First the
incidents open now (cause, where, since when, evidence), the probes' fleet,
the stock of what is on screen and the warehouses gone stale; below them the
report's own sections on the data so far. Once the show is over the page
keeps the last state and points at the report, which stays the after-show
document.

Pure: the show's data and what only the running collector knows come in,
HTML goes out. The collector serves it (``qosmon.collector.routes.live``).
A page is in one language (``lang``, English or Simplified Chinese): the
templates' words, the words built here and the report's sections all go
through the same translator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup

from qosmon.i18n import DEFAULT_LANGUAGE, HTML_LANG, translator
from qosmon.model import Show, StockLevel, StockState
from qosmon.pipeline import ProbeQos
from qosmon.report import charts
from qosmon.report.data import ShowData
from qosmon.report.render import environment, render_sections
from qosmon.report.sections import build_sections
from qosmon.report.sections.incidents import IncidentView
from qosmon.report.timing import Translate, duration_text, utc, utc_time
from qosmon.report.verdict import ReportThresholds
from qosmon.report.vocabulary import LEVEL_TEXT

# The report's sections the live page shows under its own blocks, in order.
LIVE_SECTIONS: tuple[str, ...] = ("headline", "regions", "timeline", "incidents", "stock",
                                  "probes")


@dataclass(frozen=True)
class LiveInputs:
    """What only the running collector knows about the show now."""

    now: float
    running: bool  # the collector is watching the show (it has not ended)
    fleet: list[dict[str, object]]  # the collector's fleet view (heartbeats)
    probes: list[ProbeQos]  # each probe's latest sample for this show
    stock: list[StockState]  # the current state per SKU x warehouse
    report_url: str | None = None  # where the after-show report is, once written


@dataclass(frozen=True)
class ProbeRow:
    probe_id: str
    region: str
    state: str  # "up" / "down" / "no samples" (a style and the sort's key)
    state_text: str  # the state in the page's language
    sample_age: str  # since its latest sample for this show
    connection: str  # the WebRTC connection state it reported
    heartbeat: str  # since its last heartbeat to the collector
    # What its latest second shows while it lasts: picture stuck, no audio.
    now: str = ""


@dataclass(frozen=True)
class StockRow:
    sku: str
    name: str
    warehouse: str
    level: StockLevel
    level_text: str
    on_hand: int | None
    minutes_left: float | None
    action: str
    data_age: str


@dataclass(frozen=True)
class StaleWarehouse:
    warehouse: str
    data_age: str  # of its newest word
    skus: int


@dataclass(frozen=True)
class LiveView:
    show: Show
    running: bool
    updated: str  # UTC time of this view
    elapsed: str  # since the show started
    open_incidents: list[IncidentView]  # newest first
    probes: list[ProbeRow]
    probes_up: int
    on_screen: list[StockRow]  # worst first
    stale: list[StaleWarehouse]
    sections: list[Markup] = field(default_factory=list)
    report_url: str | None = None
    lang: str = DEFAULT_LANGUAGE


def _ago(now: float, ts: float | None, t: Translate) -> str:
    if ts is None:
        return t("never")
    return t("{s} s ago").format(s=f"{max(0.0, now - ts):.0f}")


def _seconds(value: float | None, t: Translate) -> str:
    return t("–") if value is None else t("{s} s").format(s=f"{value:.0f}")


def _probe_rows(live: LiveInputs, regions: Sequence[str], t: Translate) -> list[ProbeRow]:
    heard = {str(p["probe_id"]): p for p in live.fleet}
    rows = []
    seen = set()
    for p in sorted(live.probes, key=lambda p: (p.region, p.probe_id)):
        seen.add(p.probe_id)
        hb = heard.get(p.probe_id, {})
        last_hb = hb.get("last_heartbeat")
        state = "up" if p.up else "down"
        # The probe's own host fell behind: what it shows now is its own.
        overloaded = bool(p.latest.socket_drops) or (
            (p.latest.probe_lag_ms or 0.0) >= ReportThresholds().probe_lag_ms)
        now = [t(w) for w, on in (("picture stuck", p.latest.stuck_ms > 0),
                                  ("no audio", bool(p.latest.audio_stalled)),
                                  ("probe overloaded", overloaded)) if on]
        rows.append(ProbeRow(
            probe_id=p.probe_id, region=p.region, state=state, state_text=t(state),
            sample_age=_ago(live.now, p.latest.ts, t),
            connection=t(p.latest.state.value.replace("_", " ")),
            heartbeat=_ago(live.now, last_hb if isinstance(last_hb, float) else None, t),
            now=", ".join(now) if p.up else "",
        ))
    # Probes of the show's regions that have sent nothing for it yet.
    for pid, hb in sorted(heard.items()):
        labels = hb.get("labels")
        region = labels.get("region", "") if isinstance(labels, dict) else ""
        if pid in seen or region not in regions:
            continue
        last_hb = hb.get("last_heartbeat")
        rows.append(ProbeRow(
            probe_id=pid, region=str(region), state="no samples", state_text=t("no samples"),
            sample_age=t("never"), connection=t("–"),
            heartbeat=_ago(live.now, last_hb if isinstance(last_hb, float) else None, t),
        ))
    # Trouble first: a person scans for what is down.
    order = {"down": 0, "no samples": 1, "up": 2}
    return sorted(rows, key=lambda r: (order[r.state], r.region, r.probe_id))


def _stock_rows(show: Show, states: list[StockState], t: Translate
                ) -> tuple[list[StockRow], list[StaleWarehouse]]:
    names = {s.sku: s.name for s in show.skus}
    on_screen = [
        StockRow(sku=s.sku, name=names.get(s.sku, ""), warehouse=s.warehouse, level=s.level,
                 level_text=t(LEVEL_TEXT[s.level]), on_hand=s.on_hand,
                 minutes_left=s.minutes_left, action=s.action,
                 data_age=_seconds(s.data_age_s, t))
        for s in states if s.on_screen
    ]
    on_screen.sort(key=lambda r: (-r.level.severity, r.sku, r.warehouse))
    stale: dict[str, list[StockState]] = {}
    for s in states:
        if s.level is StockLevel.STALE:
            stale.setdefault(s.warehouse, []).append(s)
    stale_rows = [
        StaleWarehouse(warehouse=wh, skus=len(group), data_age=_seconds(
            None if all(g.data_age_s is None for g in group)
            else max(g.data_age_s or 0.0 for g in group), t))
        for wh, group in sorted(stale.items())
    ]
    return on_screen, stale_rows


def build_live(data: ShowData, live: LiveInputs, lang: str = DEFAULT_LANGUAGE) -> LiveView:
    """The live view of ``data`` (the show's stored data so far) at
    ``live.now``, in ``lang`` (an unknown one raises
    :class:`qosmon.i18n.LanguageError`)."""
    t = translator(lang)
    show = data.show
    views = build_sections(data, None if show.end_ts is not None else live.now,
                           only=LIVE_SECTIONS, lang=lang)
    open_ids = {i.incident_id for i in data.incidents if i.end_ts is None}
    open_incidents: list[IncidentView] = []
    if views.incidents is not None:
        open_incidents = [i for i in views.incidents.incidents if i.id in open_ids]
        open_incidents.reverse()  # the newest is what just paged
    probes = _probe_rows(live, views.context.regions, t)
    on_screen, stale = _stock_rows(show, live.stock, t)
    return LiveView(
        show=show, running=live.running, updated=utc_time(live.now),
        elapsed=duration_text(max(0.0, (show.end_ts or live.now) - show.start_ts), t),
        open_incidents=open_incidents, probes=probes,
        probes_up=sum(1 for p in probes if p.state == "up"),
        on_screen=on_screen, stale=stale, sections=render_sections(views, LIVE_SECTIONS),
        report_url=live.report_url, lang=lang,
    )


def render_live_body(view: LiveView) -> str:
    """The part of the page that updates: everything below the title."""
    return environment().get_template("live/body.html.j2").render(
        v=view, t=translator(view.lang))


def render_live_page(view: LiveView, *, events_url: str, script_url: str) -> str:
    """The whole page; while the show runs, ``script_url`` keeps its body
    current from the server-sent events at ``events_url``."""
    return environment().get_template("live/page.html.j2").render(
        v=view, body=Markup(render_live_body(view)), events_url=events_url,
        script_url=script_url, defs=charts.svg_defs(), t=translator(view.lang),
        html_lang=HTML_LANG[view.lang],
    )


@dataclass(frozen=True)
class ShowRow:
    show_id: str
    title: str
    start: str
    live: bool
    report_url: str | None


def render_show_list(shows: Sequence[Show], watching: set[str], now: float,
                     report_urls: dict[str, str], lang: str = DEFAULT_LANGUAGE) -> str:
    """``GET /shows/``: live shows first, then past ones, newest first;
    the links open the shows' pages in the same ``lang``."""
    t = translator(lang)
    rows = [
        ShowRow(show_id=s.show_id, title=s.title or s.show_id, start=utc(s.start_ts),
                live=s.show_id in watching, report_url=report_urls.get(s.show_id))
        for s in sorted(shows, key=lambda s: (s.show_id not in watching, -s.start_ts))
    ]
    return environment().get_template("live/shows.html.j2").render(
        rows=rows, updated=utc(now), t=t, html_lang=HTML_LANG[lang], lang=lang)


def render_login(next_path: str, problem: str = "", lang: str = DEFAULT_LANGUAGE) -> str:
    """The form asking for a read token in ``lang``; ``problem`` (its
    English wording, a key of the catalogue) is said above it."""
    t = translator(lang)
    return environment().get_template("live/login.html.j2").render(
        next=next_path, problem=t(problem) if problem else "", t=t,
        html_lang=HTML_LANG[lang], lang=lang)
