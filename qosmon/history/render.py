"""The history page: one self-contained HTML file, like a show report.

Takes a :class:`~qosmon.history.analysis.History` and a language; charts are
inline SVG drawn here with the report's palette and styles, text goes through
the page's translator, and every outside string (titles, regions, SKUs) is
escaped by the template engine or :func:`markupsafe.escape`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape

from qosmon import __version__
from qosmon.history.analysis import WEEKDAYS, History, history_json
from qosmon.i18n import HTML_LANG, cause_name, translator
from qosmon.report import charts
from qosmon.report.output import atomic_write, report_filename

W, H = charts.W, 300
PAD_L, PAD_R, PAD_T, PAD_B = 44, 16, 14, 36
CAUSE_COLOURS = {
    "node_failure": "#D55E00", "bandwidth": "#E69F00", "packet_loss": "#CC79A7",
    "high_latency": "#56B4E9", "chat_channel": "#0072B2", "stock_out": "#009E73",
    "audio_stalled": "#F0E442",
    "low_stock": "#7fcfb5", "stale_inventory": "#8c959f", "network_fine": "#000000",
    "unknown": "#bbbbbb",
}


KIND_TEXT = {"sold_out": "sold out", "red": "red: about to sell out", "stale": "stale data",
             "sync_fault": "sync fault"}


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([
            jinja2.PackageLoader("qosmon.history", "templates"),
            jinja2.PackageLoader("qosmon.report", "templates"),
        ]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = charts.fmt_num
    return env


def _date(ts: float, zone: str = "UTC") -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _x_scale(h: History) -> tuple[float, float]:
    if not h.shows:
        return 0.0, 1.0
    lo, hi = h.shows[0].start_ts, h.shows[-1].start_ts
    pad = max(3600.0, (hi - lo) * 0.03)
    return lo - pad, hi + pad


def _x(ts: float, lo: float, hi: float) -> float:
    return PAD_L + (ts - lo) / (hi - lo) * (W - PAD_L - PAD_R)


def _date_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    step = (hi - lo) / n
    return [lo + step * (i + 0.5) for i in range(n)]


def trend_chart(h: History, t: object, link: Callable[[str], str]) -> Markup:
    """Score 0-100 per region over shows; each point links to its report."""
    lo, hi = _x_scale(h)

    def y(v: float) -> float:
        return PAD_T + (100.0 - v) / 100.0 * (H - PAD_T - PAD_B)

    out = [f'<svg class="chart wide" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="{escape(t("Score per region over shows"))}">']  # type: ignore[operator]
    for v in (0, 25, 50, 75, 100):
        out.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="{charts.GRID}"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="12" '
                   f'fill="{charts.MUTED}">{v}</text>')
    for tick in _date_ticks(lo, hi):
        out.append(f'<text x="{_x(tick, lo, hi):.1f}" y="{H - 12}" text-anchor="middle" '
                   f'font-size="12" fill="{charts.MUTED}">{_date(tick)[:10]}</text>')
    for ch in h.changes[:: max(1, len(h.regions))]:
        if lo <= ch.change.ts <= hi:
            x = _x(ch.change.ts, lo, hi)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_T}" y2="{H - PAD_B}" '
                       f'stroke="{charts.THRESHOLD}" stroke-dasharray="5 4"/>')
            out.append(f'<text x="{x + 4:.1f}" y="{PAD_T + 12}" font-size="12" '
                       f'fill="{charts.THRESHOLD}">{escape(ch.change.label)}</text>')
    for i, region in enumerate(h.regions):
        colour = charts.SERIES_COLOURS[i % len(charts.SERIES_COLOURS)]
        pts = [(p, _x(p.start_ts, lo, hi), y(p.score)) for p in h.trend[region]
               if p.score is not None]
        if len(pts) > 1:
            d = " ".join(f"{'M' if k == 0 else 'L'}{x:.1f},{yy:.1f}"
                         for k, (_, x, yy) in enumerate(pts))
            out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for p, x, yy in pts:
            tip = f"{region} · {p.title or p.show_id} · {_date(p.start_ts)} UTC · {p.score:.0f}"
            out.append(f'<a href="{escape(link(p.show_id))}">'
                       f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="5" fill="{colour}" stroke="#fff">'
                       f'<title>{escape(tip)}</title></circle></a>')
    out.append("</svg>")
    return Markup("".join(out))


def causes_chart(h: History, t: object) -> Markup:
    """Incident minutes per show, stacked by cause."""
    n = len(h.shows)
    top = max((sum(m.values()) for m in h.cause_minutes), default=0.0)
    top = charts.nice_max(top) if top > 0 else 1.0
    plot_w = W - PAD_L - PAD_R
    bw = plot_w / max(1, n)

    def y(v: float) -> float:
        return PAD_T + (top - v) / top * (H - PAD_T - PAD_B)

    out = [f'<svg class="chart wide" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="{escape(t("Causes over time"))}">']  # type: ignore[operator]
    for v in charts.nice_ticks(0, top):
        out.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="{charts.GRID}"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="12" '
                   f'fill="{charts.MUTED}">{charts.fmt_num(v)}</text>')
    for k, (show, minutes) in enumerate(zip(h.shows, h.cause_minutes, strict=True)):
        x = PAD_L + k * bw + bw * 0.15
        base = 0.0
        for cause in h.causes:
            m = minutes.get(cause, 0.0)
            if m <= 0:
                continue
            tip = f"{show.title or show.show_id} · {cause_name(cause)} · {m:.1f} min"
            fill = CAUSE_COLOURS.get(cause, "#bbb")
            out.append(f'<rect x="{x:.1f}" y="{y(base + m):.1f}" width="{bw * 0.7:.1f}" '
                       f'height="{y(base) - y(base + m):.1f}" '
                       f'fill="{fill}" stroke="#fff" stroke-width="0.5">'
                       f'<title>{escape(tip)}</title></rect>')
            base += m
        if n <= 24 or k % max(1, n // 12) == 0:
            out.append(f'<text x="{x + bw * 0.35:.1f}" y="{H - 12}" text-anchor="middle" '
                       f'font-size="11" fill="{charts.MUTED}">{_date(show.start_ts)[5:10]}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def render_history(
    h: History, lang: str = "en", link: Callable[[str], str] = report_filename
) -> str:
    """The page. ``link(show_id)``: where a show opens (its report file next
    to the page, or the collector's show page)."""
    t = translator(lang)
    env = _env()
    slot_rows = [
        {"region": s.region, "zone": s.zone,
         "slot": f"{t(WEEKDAYS[s.weekday])} {s.label.split(' ', 1)[1]}",
         "aired": len(s.shows_aired), "failing": len(s.shows_failing),
         "minutes": s.incident_minutes, "viewers": s.viewers_lost, "orders": s.orders_lost}
        for s in h.slots
    ]
    incident_rows = []
    for i in h.incidents:
        region = i.where.split("region=", 1)[1].split(",", 1)[0] if "region=" in i.where else ""
        zone = h.zones.get(region, "UTC")
        incident_rows.append({
            "show_id": i.show_id, "title": i.title, "file": link(i.show_id),
            "utc": _date(i.start_ts), "local": _date(i.start_ts, zone) if region else "",
            "zone": zone if region else "", "minutes": i.minutes,
            "cause": cause_name(i.cause, lang),
            "where": i.where, "viewers": i.viewers_lost, "orders": i.orders_lost,
            "summary": i.summary,
        })
    legend = [(cause_name(c, lang), CAUSE_COLOURS.get(c, "#bbb")) for c in h.causes]
    return env.get_template("history.html.j2").render(
        t=t, lang=HTML_LANG[lang], ln=lang, h=h, defs=charts.svg_defs(), version=__version__,
        first=_date(h.shows[0].start_ts) if h.shows else "",
        last=_date(h.shows[-1].start_ts) if h.shows else "",
        trend=trend_chart(h, t, link), causes=causes_chart(h, t), legend=legend,
        region_colours={r: charts.SERIES_COLOURS[i % len(charts.SERIES_COLOURS)]
                        for i, r in enumerate(h.regions)},
        mean={r: _mean([p.score for p in h.trend[r]]) for r in h.regions},
        kind_text=KIND_TEXT,
        latest={r: next((p.score for p in reversed(h.trend[r]) if p.score is not None), None)
                for r in h.regions},
        network=h.network, slots=slot_rows, incidents=incident_rows, skus=h.skus,
        changes=h.changes, report_file=link, cause_name=cause_name,
    )


def write_history(h: History, out_dir: Path, lang: str = "en") -> tuple[Path, Path]:
    """Write ``history.html`` and ``history.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "history.html", out_dir / "history.json"
    atomic_write(html_path, render_history(h, lang))
    atomic_write(json_path, json.dumps(history_json(h), indent=1, ensure_ascii=False))
    return html_path, json_path
