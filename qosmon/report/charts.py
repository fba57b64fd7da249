"""Charts as inline SVG, drawn in Python: no script, no font, no request.

Pure functions from numbers to SVG markup. Every piece of text that reaches
the SVG goes through :func:`markupsafe.escape`, so a region or SKU name can
hold anything. Sizes are in viewBox units and the SVG scales to its box,
which keeps it sharp on a phone and in print.

Colours are the Okabe-Ito palette (safe for the common colour-vision
deficiencies) and every state colour also has a pattern and a text label,
so nothing is told by colour alone. Words drawn on a chart go through the
page's translator ``t`` (English when none is given).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from markupsafe import Markup, escape

from qosmon.model import StockLevel
from qosmon.report.signals import Buckets, FloatArray
from qosmon.report.timing import Translate, english

# Okabe-Ito, minus yellow for lines (too light on white).
SERIES_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000"]
INK = "#1f2328"
MUTED = "#6e7781"
GRID = "#e5e7eb"
THRESHOLD = "#D55E00"

# State fills reference patterns defined once per page (see ``svg_defs``).
STATUS_FILL = {
    "good": "#009E73",
    "degraded": "url(#pat-degraded)",
    "failed": "url(#pat-failed)",
    "unknown": "url(#pat-unknown)",
}
LEVEL_FILL: dict[str, str] = {
    StockLevel.GREEN: "#009E73",
    StockLevel.YELLOW: "#F0E442",
    StockLevel.ORANGE: "url(#pat-orange)",
    StockLevel.RED: "url(#pat-red)",
    StockLevel.STALE: "url(#pat-unknown)",
    StockLevel.SYNC_FAULT: "url(#pat-syncfault)",
    StockLevel.UNKNOWN: "#ffffff",
}
# A plain colour per level, for the small swatches in tables (patterns do
# not show at that size; the level's name stands next to it).
LEVEL_SWATCH: dict[str, str] = {
    StockLevel.GREEN: "#009E73",
    StockLevel.YELLOW: "#F0E442",
    StockLevel.ORANGE: "#E69F00",
    StockLevel.RED: "#D55E00",
    StockLevel.STALE: "#eceff1",
    StockLevel.SYNC_FAULT: "#CC79A7",
    StockLevel.UNKNOWN: "#eceff1",
}

W = 960  # full-width charts: about one viewBox unit per CSS pixel on a desktop
W_HALF = 480  # charts shown two abreast
FONT = 12


def svg_defs() -> Markup:
    """Patterns shared by every chart of the page (ids are page-global)."""
    return Markup(
        '<svg width="0" height="0" style="position:absolute" aria-hidden="true" focusable="false">'
        "<defs>"
        '<pattern id="pat-degraded" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><rect width="6" height="6" fill="#F6C66B"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#9a5b00" stroke-width="2"/></pattern>'
        '<pattern id="pat-failed" width="6" height="6" patternUnits="userSpaceOnUse">'
        '<rect width="6" height="6" fill="#D55E00"/>'
        '<path d="M0 0L6 6M6 0L0 6" stroke="#4a1f00" stroke-width="1.2"/></pattern>'
        '<pattern id="pat-unknown" width="6" height="6" patternUnits="userSpaceOnUse">'
        '<rect width="6" height="6" fill="#eceff1"/><circle cx="3" cy="3" r="1" fill="#8c959f"/>'
        "</pattern>"
        '<pattern id="pat-orange" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><rect width="6" height="6" fill="#E69F00"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#7a4d00" stroke-width="1.5"/></pattern>'
        '<pattern id="pat-red" width="6" height="6" patternUnits="userSpaceOnUse">'
        '<rect width="6" height="6" fill="#D55E00"/>'
        '<path d="M0 0L6 6M6 0L0 6" stroke="#3d1900" stroke-width="1.2"/></pattern>'
        '<pattern id="pat-syncfault" width="8" height="8" patternUnits="userSpaceOnUse">'
        '<rect width="8" height="8" fill="#CC79A7"/>'
        '<path d="M0 4H8" stroke="#4d1f3a" stroke-width="1.5"/></pattern>'
        "</defs></svg>"
    )


# --------------------------------------------------------------------------
# scales and ticks


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo] if math.isfinite(lo) else [0.0]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out: list[float] = []
    v = first
    while v <= hi + step * 1e-6 and len(out) < 50:
        out.append(round(v, 10))
        v += step
    return out


def nice_max(v: float) -> float:
    if not math.isfinite(v) or v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    return next(m * mag for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * mag >= v)


def fmt_num(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 10_000:
        return f"{v / 1000:.0f}k"
    if a >= 1000:
        return f"{v / 1000:.1f}k".replace(".0k", "k")
    if a >= 10 or float(v).is_integer():
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.1f}"
    return f"{v:.2g}"


def fmt_clock(seconds: float) -> str:
    """Time into the show: h:mm, or m:ss for the first hour when short."""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}:{m:02d}:{sec:02d}" if sec else f"{h}:{m:02d}"
    return f"{m}:{sec:02d}"


def time_ticks(span_s: float, target: int = 7) -> list[float]:
    for step in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600):
        if span_s / step <= target:
            return [float(i * step) for i in range(int(span_s // step) + 1)]
    wide = span_s / target
    return [i * wide for i in range(target + 1)]


@dataclass
class Frame:
    """The plot area of a chart and its scales."""

    t0: float
    t1: float
    y0: float
    y1: float
    height: int
    left: int = 44
    right: int = 18
    top: int = 22
    bottom: int = 24
    width: int = W
    origin: float | None = None  # time labels count from here (the show start)

    @property
    def pw(self) -> float:
        return self.width - self.left - self.right

    @property
    def ph(self) -> float:
        return self.height - self.top - self.bottom

    def x(self, t: float) -> float:
        return self.left + (t - self.t0) / max(self.t1 - self.t0, 1e-9) * self.pw

    def xs(self, t: FloatArray) -> FloatArray:
        return self.left + (t - self.t0) / max(self.t1 - self.t0, 1e-9) * self.pw

    def y(self, v: float) -> float:
        v = min(max(v, self.y0), self.y1)
        return self.top + self.ph - (v - self.y0) / max(self.y1 - self.y0, 1e-9) * self.ph

    def ys(self, v: FloatArray) -> FloatArray:
        v = np.clip(v, self.y0, self.y1)
        return self.top + self.ph - (v - self.y0) / max(self.y1 - self.y0, 1e-9) * self.ph


def _svg_open(height: int, label: str, cls: str = "chart", width: int = W) -> str:
    if width >= W:
        cls += " wide"  # kept wider than a phone screen (scrolls) so text stays legible
    return (
        f'<svg class="{cls}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet" '
        f'font-size="{FONT}" font-family="inherit">'
        f"<title>{escape(label)}</title>"
    )


def _text(x: float, y: float, s: str, anchor: str = "start", cls: str = "", fill: str = MUTED,
          size: int | None = None, weight: str = "") -> str:
    extra = f' font-size="{size}"' if size else ""
    extra += f' font-weight="{weight}"' if weight else ""
    extra += f' class="{cls}"' if cls else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>'
        f"{escape(s)}</text>"
    )


def _axes(f: Frame, unit: str, fmt_y: bool = True, n_y: int = 4, x_labels: bool = True) -> str:
    parts = []
    for v in nice_ticks(f.y0, f.y1, n_y):
        y = f.y(v)
        parts.append(
            f'<line x1="{f.left}" x2="{f.left + f.pw:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        if fmt_y:
            parts.append(_text(f.left - 6, y + 4, fmt_num(v), "end"))
    if unit:
        parts.append(_text(4, f.top - 9, unit, "start", size=11))
    origin = f.t0 if f.origin is None else f.origin
    span = f.t1 - f.t0
    ticks = time_ticks(span)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else max(span, 1.0)
    first = math.ceil((f.t0 - origin) / step - 1e-9) * step
    rel = [first + i * step for i in range(len(ticks) + 1)
           if origin + first + i * step <= f.t1 + 1e-6]
    for s in rel:
        x = f.x(origin + s)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.top + f.ph:.1f}" '
            f'y2="{f.top + f.ph + 4:.1f}" stroke="{MUTED}"/>'
        )
        if x_labels:
            parts.append(_text(x, f.top + f.ph + 16, fmt_clock(s), "middle", size=10))
    parts.append(
        f'<line x1="{f.left}" x2="{f.left + f.pw:.1f}" y1="{f.top + f.ph:.1f}" '
        f'y2="{f.top + f.ph:.1f}" stroke="{MUTED}"/>'
    )
    return "".join(parts)


# --------------------------------------------------------------------------
# time series


@dataclass
class Series:
    name: str
    t: FloatArray  # x values (Unix seconds)
    v: FloatArray  # line values; NaN breaks the line
    lo: FloatArray | None = None  # per-bucket minimum (drawn as a band)
    hi: FloatArray | None = None  # per-bucket maximum
    colour: str = SERIES_COLOURS[0]
    step: bool = False
    dash: str = ""
    width: float = 1.6
    # Stacked: filled from ``base`` up to ``v`` (an area, or bars of
    # ``bar_s`` seconds centred on ``t``).
    base: FloatArray | None = None
    bar_s: float = 0.0

    @classmethod
    def from_buckets(cls, name: str, b: Buckets, colour: str = SERIES_COLOURS[0]) -> Series:
        # Plot each bucket at its middle.
        half = b.width_s / 2 if b.width_s else (
            (b.t[1] - b.t[0]) / 2 if len(b.t) > 1 else 0.0)
        return cls(name=name, t=b.t + half, v=b.mean, lo=b.lo, hi=b.hi, colour=colour)


@dataclass
class Threshold:
    value: float
    label: str
    bad_above: bool = True
    label_left: bool = False  # put the label at the left end (baselines)
    colour: str = THRESHOLD


@dataclass
class Band:
    """A marked time span (an incident); ``ref`` links to its anchor."""

    start: float
    end: float
    label: str
    ref: str = ""
    title: str = ""
    marker: bool = False  # a line at the start only (long merchandising incidents)


@dataclass
class Lane:
    """A horizontal strip of runs (start, end, state) with a label."""

    label: str
    runs: list[tuple[float, float, str]] = field(default_factory=list)
    title: str = ""


def _runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where mask is true."""
    if not len(mask):
        return []
    m = np.concatenate(([False], mask.astype(bool), [False]))
    d = np.diff(m.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _line_path(xs: FloatArray, ys: FloatArray, step: bool) -> str:
    ok = ~(np.isnan(xs) | np.isnan(ys))
    parts = []
    for a, b in _runs_of(ok):
        px, py = xs[a:b], ys[a:b]
        seg = [f"M{px[0]:.1f} {py[0]:.1f}"]
        if step:
            for i in range(1, len(px)):
                seg.append(f"H{px[i]:.1f}V{py[i]:.1f}")
        else:
            if len(px) == 1:
                seg.append("h1.5")
            seg.extend(f"L{x:.1f} {y:.1f}" for x, y in zip(px[1:], py[1:], strict=True))
        parts.append("".join(seg))
    return "".join(parts)


def _band_path(xs: FloatArray, lo: FloatArray, hi: FloatArray) -> str:
    ok = ~(np.isnan(lo) | np.isnan(hi))
    parts = []
    for a, b in _runs_of(ok):
        px, pl, ph = xs[a:b], lo[a:b], hi[a:b]
        if len(px) == 1:
            px = np.array([px[0] - 1, px[0] + 1])
            pl = np.repeat(pl, 2)
            ph = np.repeat(ph, 2)
        top = "L".join(f"{x:.1f} {y:.1f}" for x, y in zip(px, ph, strict=True))
        bottom = "L".join(f"{x:.1f} {y:.1f}" for x, y in zip(px[::-1], pl[::-1], strict=True))
        parts.append(f"M{top}L{bottom}Z")
    return "".join(parts)


def _bands(f: Frame, bands: Sequence[Band], label_row: bool = True) -> str:
    parts = []
    for b in bands:
        s = max(b.start, f.t0)
        e = min(b.end, f.t1)
        if e < f.t0 or s > f.t1:
            continue
        x0 = f.x(s)
        x1 = max(f.x(e), x0 + 2)
        if b.marker:
            line = (
                f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{f.top}" y2="{f.top + f.ph:.1f}" '
                f'stroke="{INK}" stroke-width="1.2" stroke-dasharray="2 3">'
                f"<title>{escape(b.title or b.label)}</title></line>"
            )
            label = (
                _text(x0 + 2, f.top + 10, b.label, size=10, fill=INK, weight="600")
                if label_row and b.label else ""
            )
            inner = line + label
            parts.append(f'<a href="#{escape(b.ref)}">{inner}</a>' if b.ref else inner)
            continue
        rect = (
            f'<rect x="{x0:.1f}" y="{f.top}" width="{x1 - x0:.1f}" height="{f.ph:.1f}" '
            f'fill="#000" fill-opacity="0.07"><title>{escape(b.title or b.label)}</title></rect>'
        )
        label = ""
        if label_row and b.label:
            label = _text(x0 + 2, f.top + 10, b.label, size=10, fill=INK, weight="600")
        inner = rect + label
        if b.ref:
            inner = f'<a href="#{escape(b.ref)}">{inner}</a>'
        parts.append(inner)
    return "".join(parts)


def _threshold(f: Frame, th: Threshold) -> str:
    if not (f.y0 <= th.value <= f.y1):
        return ""
    y = f.y(th.value)
    x, anchor = (f.left + 4, "start") if th.label_left else (f.left + f.pw - 2, "end")
    return (
        f'<line x1="{f.left}" x2="{f.left + f.pw:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
        f'stroke="{th.colour}" stroke-width="1.3" stroke-dasharray="6 4"/>'
        + _text(x, y - 4, th.label, anchor, fill=th.colour, size=10, weight="600")
    )


def time_chart(
    t0: float,
    t1: float,
    series: Sequence[Series],
    *,
    title: str,
    unit: str,
    thresholds: Sequence[Threshold] = (),
    bands: Sequence[Band] = (),
    height: int = 170,
    y_min: float = 0.0,
    y_max: float | None = None,
    legend: bool = True,
    x_labels: bool = True,
    width: int = W,
    origin: float | None = None,
    t: Translate = english,
) -> Markup:
    """Lines (with a min-max band where given) over show time, threshold
    lines, incident bands, axes with units, and a legend."""
    if y_max is None:
        peaks = [0.0]
        for s in series:
            for arr in (s.v, s.hi):
                if arr is not None and len(arr) and not np.all(np.isnan(arr)):
                    peaks.append(float(np.nanmax(arr)))
        peaks.extend(th.value * 1.15 for th in thresholds)
        y_max = nice_max(max(peaks))
    f = Frame(t0, t1, y_min, max(y_max, y_min + 1e-9), height, width=width, origin=origin)
    parts = [_svg_open(height, title, width=width), _axes(f, unit, x_labels=x_labels),
             _bands(f, bands)]
    has_data = False
    for s in series:
        xs = f.xs(s.t)
        if s.base is not None and s.bar_s > 0:
            bw = max(f.x(s.t[0] + s.bar_s) - f.x(s.t[0]) - 1, 0.8) if len(s.t) else 0.0
            rects = []
            for x, lo, hi in zip(xs.tolist(), f.ys(s.base).tolist(), f.ys(s.v).tolist(),
                                 strict=True):
                if math.isnan(lo) or math.isnan(hi) or lo - hi < 0.05:
                    continue
                rects.append(f"M{x - bw / 2:.1f} {lo:.1f}V{hi:.1f}h{bw:.1f}V{lo:.1f}Z")
            if rects:
                has_data = True
                parts.append(f'<path d="{"".join(rects)}" fill="{s.colour}" stroke="none">'
                             f"<title>{escape(s.name)}</title></path>")
            continue
        if s.base is not None:
            d = _band_path(xs, f.ys(s.base), f.ys(s.v))
            if d:
                parts.append(
                    f'<path d="{d}" fill="{s.colour}" fill-opacity="0.55" stroke="none">'
                    f"<title>{escape(s.name)}</title></path>"
                )
        if s.lo is not None and s.hi is not None:
            d = _band_path(xs, f.ys(s.lo), f.ys(s.hi))
            if d:
                parts.append(
                    f'<path d="{d}" fill="{s.colour}" fill-opacity="0.18" stroke="none"/>'
                )
        d = _line_path(xs, f.ys(s.v), s.step)
        if d:
            has_data = True
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            parts.append(
                f'<path d="{d}" fill="none" stroke="{s.colour}" stroke-width="{s.width}"'
                f' stroke-linejoin="round"{dash}><title>{escape(s.name)}</title></path>'
            )
    for th in thresholds:
        parts.append(_threshold(f, th))
    if not has_data:
        parts.append(_text(f.left + f.pw / 2, f.top + f.ph / 2, t("no data"), "middle"))
    parts.append("</svg>")
    out = "".join(parts)
    if legend and series:
        out += legend_html(
            [(s.name, s.colour, "box" if s.base is not None else "line") for s in series],
            band=any(s.lo is not None for s in series), t=t)
    return Markup(out)


def legend_html(items: Sequence[tuple[str, str, str]], band: bool = False,
                t: Translate = english) -> str:
    """A legend as HTML (wraps on a phone, stays text in print)."""
    parts = ['<ul class="legend">']
    for name, colour, kind in items:
        if kind == "line":
            swatch = (
                f'<svg viewBox="0 0 18 8" width="18" height="8" aria-hidden="true">'
                f'<line x1="0" y1="4" x2="18" y2="4" stroke="{colour}" stroke-width="2.5"/></svg>'
            )
        else:
            swatch = (
                f'<svg viewBox="0 0 12 12" width="12" height="12" aria-hidden="true">'
                f'<rect width="12" height="12" fill="{colour}" stroke="#555" '
                f'stroke-width="0.5"/></svg>'
            )
        parts.append(f"<li>{swatch} {escape(name)}</li>")
    if band:
        parts.append(f'<li class="note">{escape(t("shaded: min-max per time bucket"))}</li>')
    parts.append("</ul>")
    return "".join(parts)


# --------------------------------------------------------------------------
# lanes: verdict strips and the inventory heat map


def lanes_chart(
    t0: float,
    t1: float,
    lanes: Sequence[Lane],
    fills: dict[str, str],
    *,
    title: str,
    bands: Sequence[Band] = (),
    lane_h: int = 18,
    label_w: int = 110,
    marks: Sequence[tuple[int, float, float]] = (),
    state_text: dict[str, str] | None = None,
    t: Translate = english,
) -> Markup:
    """One strip per lane of coloured runs over show time. ``marks`` are
    (lane index, start, end) spans outlined on top (e.g. SKU on screen);
    ``state_text`` names a state where its key is not a word."""
    names = state_text or {}
    top = 14
    height = top + len(lanes) * (lane_h + 4) + 24
    f = Frame(t0, t1, 0, 1, height, left=label_w, top=top, bottom=24)
    parts = [_svg_open(height, title, "chart lanes")]
    parts.append(_axes(f, "", fmt_y=False, n_y=0))
    for i, lane in enumerate(lanes):
        y = top + i * (lane_h + 4) + 2
        fit = max(8, int(label_w / 7.2))  # about 7 viewBox units per character at 12 px
        label = lane.label if len(lane.label) <= fit else lane.label[: fit - 1] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + lane_h / 2 + 4:.1f}" text-anchor="end" '
            f'fill="{INK}"><title>{escape(lane.title or lane.label)}</title>'
            f"{escape(label)}</text>"
        )
        for s, e, state in lane.runs:
            x0 = f.x(max(s, t0))
            x1 = f.x(min(e, t1))
            if x1 <= x0:
                continue
            fill = fills.get(state, "#ffffff")
            parts.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.6):.1f}" height="{lane_h}" '
                f'fill="{fill}"><title>{escape(lane.label)}: {escape(t(names.get(state, state)))} '
                f"{escape(fmt_clock(s - t0))}–{escape(fmt_clock(e - t0))}</title></rect>"
            )
    for i, s, e in marks:
        y = top + i * (lane_h + 4) + 2
        x0 = f.x(max(s, t0))
        x1 = f.x(min(e, t1))
        parts.append(
            f'<rect x="{x0:.1f}" y="{y - 1}" width="{max(x1 - x0, 1):.1f}" height="{lane_h + 2}" '
            f'fill="none" stroke="{INK}" stroke-width="1.6"/>'
        )
    band_frame = Frame(t0, t1, 0, 1, height, left=label_w, top=0, bottom=24)
    parts.append(_bands(band_frame, bands, label_row=False))
    parts.append("</svg>")
    return Markup("".join(parts))


def runs_from_timeline(
    t0: float, timeline: np.ndarray, names: dict[int, str], max_runs: int = 2000
) -> list[tuple[float, float, str]]:
    """Run-length encode a per-second status array into (start, end, name)."""
    if not len(timeline):
        return []
    change = np.flatnonzero(np.diff(timeline)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(timeline)]))
    runs = [
        (t0 + float(s), t0 + float(e), names[int(timeline[s])])
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]
    if len(runs) > max_runs:
        # Too fine to see: keep the worst state per pixel-sized block.
        block = math.ceil(len(timeline) / 800)
        n = math.ceil(len(timeline) / block)
        padded = np.full(n * block, -1, np.int64)
        padded[: len(timeline)] = timeline
        coarse = padded.reshape(n, block).max(axis=1)
        runs = [
            (t0 + s * block, min(t0 + e * block, t0 + len(timeline)), name)
            for s, e, name in runs_from_timeline(0.0, coarse, names, max_runs=10**9)
        ]
    return runs


# --------------------------------------------------------------------------
# distributions and evidence


def cdf_chart(
    groups: Sequence[tuple[str, FloatArray]],
    *,
    title: str,
    unit: str,
    threshold: Threshold | None = None,
    height: int = 220,
    width: int = W_HALF,
    t: Translate = english,
) -> Markup:
    """Cumulative share of sessions (y, %) with a value up to x, one line per
    group; a step per session, so a few slow joins are visible."""
    vals = [v for _, v in groups if len(v)]
    hi = max((float(np.max(v)) for v in vals), default=1.0)
    if threshold is not None:
        hi = max(hi, threshold.value * 1.1)
    x_max = nice_max(hi)
    f = Frame(0, x_max, 0, 100, height, bottom=30, width=width)
    parts = [_svg_open(height, title, width=width)]
    for tick in nice_ticks(0, 100, 4):
        y = f.y(tick)
        parts.append(
            f'<line x1="{f.left}" x2="{f.left + f.pw:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}"/>' + _text(f.left - 6, y + 4, f"{tick:.0f}%", "end")
        )
    for tick in nice_ticks(0, x_max, 6):
        x = f.x(tick)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.top + f.ph:.1f}" y2="{f.top + f.ph + 4:.1f}"'
            f' stroke="{MUTED}"/>' + _text(x, f.top + f.ph + 15, fmt_num(tick), "middle", size=10)
        )
    parts.append(_text(f.left + f.pw, f.top + f.ph + 27, unit, "end", size=10))
    parts.append(_text(4, f.top - 9, t("% of sessions"), "start", size=11))
    parts.append(
        f'<line x1="{f.left}" x2="{f.left + f.pw:.1f}" y1="{f.top + f.ph:.1f}" '
        f'y2="{f.top + f.ph:.1f}" stroke="{MUTED}"/>'
    )
    if threshold is not None:
        x = f.x(threshold.value)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.top}" y2="{f.top + f.ph:.1f}" '
            f'stroke="{THRESHOLD}" stroke-dasharray="6 4" stroke-width="1.3"/>'
            + _text(x - 4, f.top + 10, threshold.label, "end", fill=THRESHOLD, size=10,
                    weight="600")
        )
    legend = []
    for i, (name, v) in enumerate(groups):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        legend.append((f"{name} ({len(v)})", colour, "line"))
        if not len(v):
            continue
        xs: FloatArray = np.sort(v)
        if len(xs) > 400:
            # Keep the shape and both tails: quantiles plus the extremes.
            q = np.linspace(0, 1, 400)
            xs = np.quantile(xs, q)
            ys = q * 100
        else:
            ys = np.arange(1, len(xs) + 1) / len(xs) * 100
        px = f.xs(np.concatenate(([xs[0]], xs)))
        py = f.ys(np.concatenate(([0.0], ys)))
        d = _line_path(px, py, step=True)
        parts.append(
            f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.8">'
            f"<title>{escape(name)}</title></path>"
        )
    if not vals:
        parts.append(_text(f.left + f.pw / 2, f.top + f.ph / 2, t("no data"), "middle"))
    parts.append("</svg>")
    return Markup("".join(parts) + legend_html(legend, t=t))


def bullet_chart(
    label: str, observed: float | None, baseline: float | None, threshold: float | None,
    unit: str,
    t: Translate = english,
) -> Markup:
    """Observed against baseline and threshold on one small bar."""
    vals = [v for v in (observed, baseline, threshold) if v is not None]
    width, height = 300, 44
    if not vals:
        return Markup("")
    x_max = nice_max(max(vals) * 1.05) if max(vals) > 0 else 1.0
    left, right = 8, 8
    pw = width - left - right

    def x(v: float) -> float:
        return left + max(0.0, min(v, x_max)) / x_max * pw

    parts = [_svg_open(height, label, "bullet", width=width)]
    parts.append(f'<rect x="{left}" y="14" width="{pw}" height="12" fill="{GRID}"/>')
    if observed is not None:
        parts.append(
            f'<rect x="{left}" y="14" width="{max(x(observed) - left, 1):.1f}" height="12" '
            f'fill="{SERIES_COLOURS[0]}"><title>{escape(t("observed"))} '
            f"{escape(fmt_num(observed))} {escape(unit)}</title></rect>"
        )
    if baseline is not None:
        xb = x(baseline)
        parts.append(
            f'<line x1="{xb:.1f}" x2="{xb:.1f}" y1="9" y2="31" stroke="{INK}" stroke-width="2.5">'
            f"<title>{escape(t('baseline'))} {escape(fmt_num(baseline))} {escape(unit)}</title>"
            "</line>"
        )
    if threshold is not None:
        xt = x(threshold)
        parts.append(
            f'<line x1="{xt:.1f}" x2="{xt:.1f}" y1="9" y2="31" stroke="{THRESHOLD}" '
            f'stroke-width="2" stroke-dasharray="3 2"><title>{escape(t("threshold"))} '
            f"{escape(fmt_num(threshold))} {escape(unit)}</title></line>"
        )
    bits = []
    if observed is not None:
        bits.append(t("seen {v}").format(v=fmt_num(observed)))
    if baseline is not None:
        bits.append(t("before {v}").format(v=fmt_num(baseline)))
    if threshold is not None:
        bits.append(t("limit {v}").format(v=fmt_num(threshold)))
    parts.append(_text(left, 42, " · ".join(bits) + (f" {unit}" if unit else ""), size=10))
    parts.append("</svg>")
    return Markup("".join(parts))
