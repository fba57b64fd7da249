"""The show report: content a person would check, verdict arithmetic,
escaping of outside text, files and the command."""

from __future__ import annotations

import argparse
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qosmon.model import (
    AlertDelivery,
    BusinessSample,
    Cause,
    ConnectionState,
    Incident,
    OnScreen,
    ProbeSample,
    Severity,
    Show,
    StockState,
)
from qosmon.report import command
from qosmon.report.charts import fmt_num
from qosmon.report.data import ShowData, UnknownShowError, load_show_data
from qosmon.report.output import report_filename, write_report
from qosmon.report.render import build_report, render_report
from qosmon.report.signals import ProbeTable, bucket_series, grid_for, second_slots
from qosmon.report.timing import utc_time
from qosmon.report.verdict import ReportThresholds, region_verdicts
from tests.sample_show import START_TS, generate_show


class _Page(HTMLParser):
    """Visible text and the tags used, as a browser would build them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.chunks))


def parse(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    p.close()
    return p


Rendered = tuple[str, dict[str, Any], _Page]


@pytest.fixture(scope="module")
def show() -> ShowData:
    return generate_show(duration_s=1200)


@pytest.fixture(scope="module")
def rendered(show: ShowData) -> Rendered:
    html, headline = build_report(show)
    return html, headline, parse(html)


def _section(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}"')
    end = html.index("</section>", start)
    return html[start:end]


def test_headline_figures_match_the_business_data(show: ShowData, rendered: Rendered) -> None:
    html, headline, page = rendered
    # Regions report on their own sub-second offsets: a second's audience is
    # the sum of each region's figure for that second (the one its interval
    # mostly covers), not of rows that happen to share a timestamp.
    t0 = show.show.start_ts
    per_second: dict[int, int] = {}
    for b in show.business:
        if not b.sku and b.viewers_online is not None:
            k = int(np.floor(b.ts - t0 - 0.5))
            per_second[k] = per_second.get(k, 0) + b.viewers_online
    peak = max(per_second.values())
    orders = sum(b.orders or 0 for b in show.business if not b.sku)
    assert headline["peak_viewers"] == peak
    assert headline["orders"] == orders
    assert headline["duration"] == "20 min"
    head = parse(_section(html, "headline")).text
    assert fmt_num(peak) in head  # shown rounded, like a dashboard
    assert f"{orders / 1000:.1f}k" in head or str(orders) in head
    assert "20 min" in head
    # Every region has a verdict row with minutes and percentages.
    for region in show.show.regions:
        assert re.search(rf"{re.escape(region)} (good|degraded|failed)", head)
    assert page.text.startswith("Summer gadgets live") or "Summer gadgets live" in page.text


def test_each_incident_shows_where_why_evidence_and_alerts(
    show: ShowData, rendered: Rendered
) -> None:
    html, _, _ = rendered
    incidents = parse(_section(html, "incidents")).text
    labels = {
        Cause.BANDWIDTH: "bandwidth", Cause.NODE_FAILURE: "node failure",
        Cause.CHAT_CHANNEL: "chat channel", Cause.STOCK_OUT: "stock-out",
        Cause.PROBE_LOCAL: "probe-local",
    }
    for inc in show.incidents:
        assert f"{labels[inc.cause]} — {inc.scope['region']}" in incidents
        for ev in inc.evidence:
            assert ev.text in incidents
        if inc.viewers_lost:
            assert f"{inc.viewers_lost:.0f} viewers" in incidents
    # The node failure: where includes its edge node, alert resolved after a retry.
    node = next(i for i in show.incidents if i.cause == Cause.NODE_FAILURE)
    assert f"edge node {node.scope['edge_node']}" in incidents
    resolved = max(d.ts for d in show.deliveries
                   if d.incident_id == node.incident_id and d.ok)
    assert f"resolved {utc_time(resolved)}" in incidents
    assert "1 failed attempt(s)" in incidents
    # Evidence is drawn, not only written: a small chart per signal, under
    # the names diagnosis gives them (probe signals, probe counts, stock,
    # the platform's orders); two counts of the same probes share one.
    drawn = {(inc.incident_id, ev.metric) for inc in show.incidents for ev in inc.evidence
             if f'aria-label="{ev.metric} around incident {inc.incident_id}"' in html}
    metrics = {m for _, m in drawn}
    assert {"bitrate_kbps", "rtt_ms", "fps", "no_frame_ms", "probes_without_media",
            "chat_lost_ratio", "on_hand", "sku_orders_30s", "loss_pct"} <= metrics
    assert "disconnected_probes" not in metrics
    # A 0-1 ratio is charted in % against its limit (0.3 -> 30).
    chat = next(i for i in show.incidents if i.cause == Cause.CHAT_CHANNEL)
    art = html[html.index(f'aria-label="chat_lost_ratio around incident {chat.incident_id}"'):]
    assert "limit 30" in art[:art.index("</svg>")]


def test_timeline_inventory_probes_and_injected_sections(
    show: ShowData, rendered: Rendered
) -> None:
    html, _, _ = rendered
    timeline = _section(html, "timeline")
    assert 'aria-label="viewers online"' in timeline
    # 20 minutes: orders counted per 30 s, 40 bars, one per region stacked.
    assert 'aria-label="orders per 30 s"' in timeline
    assert "Orders per 30 s, by region" in timeline
    assert "Stock level of the SKUs on screen" in timeline
    inventory = parse(_section(html, "inventory")).text
    assert "delist now or switch to pre-sale" in inventory
    assert "Phone gimbal" in inventory
    probes = parse(_section(html, "probes")).text
    local = next(i for i in show.incidents if i.cause == Cause.PROBE_LOCAL)
    assert "left out" in probes.lower()
    assert local.probes[0] in probes and local.summary in probes
    found = parse(_section(html, "injected")).text
    assert "missed" not in found
    for kind in ("bandwidth", "node_down", "chat", "probe_local", "stock_out"):
        assert kind in found
    regions = _section(html, "regions")
    for caption in ("Round-trip time", "Packet loss", "Video bitrate", "Freezes",
                    "Chat delivery time", "Chat messages lost", "Time to first frame"):
        assert caption in regions
    assert "fails at 250 ms" in regions  # each chart against its threshold


def test_page_is_self_contained(rendered: Rendered) -> None:
    html, _, page = rendered
    assert "script" not in page.tags
    for name, value in page.attrs:
        if name in ("src", "href", "xlink:href", "action") and value:
            assert value.startswith("#"), (name, value)
    assert "@import" not in html and "url(http" not in html
    assert "default-src 'none'" in html


def _known_show() -> ShowData:
    """One region, two probes, 100 s: known good/degraded/failed/unknown seconds."""
    t0 = 1_700_000_000.0
    samples = []
    for probe in ("A", "B"):
        for s in range(1, 91):  # seconds 91-100: nothing from anyone
            loss, freeze = 0.1, 0
            if probe == "A" and 1 <= s <= 10:
                loss = 10.0  # one of two probes failed: half the region
            if 21 <= s <= 30:
                freeze = 1  # both froze: degraded
            if probe == "A" and 41 <= s <= 50:
                loss = 40.0  # probe-local problem: left out
            if probe == "B" and s == 60:
                loss = 3.0  # a one-second blip of a clean path: still good
            if 70 <= s <= 71:
                loss = 3.0  # two seconds in a row on both: degraded
            samples.append(ProbeSample(
                ts=t0 + s, show_id="k", stream_id="m", probe_id=probe, region="R<1>",
                state=ConnectionState.CONNECTED, rtt_ms=50, loss_pct=loss, bitrate_kbps=1000,
                freeze_count=freeze, freeze_ms=500.0 * freeze, no_frame_ms=30,
            ))
    local = Incident(incident_id="pl", show_id="k", start_ts=t0 + 40, end_ts=t0 + 50,
                     severity=Severity.INFO, cause=Cause.PROBE_LOCAL, scope={"region": "R<1>"},
                     probes=["A"], summary="A's own uplink")
    return ShowData(
        show=Show(show_id="k", title="known", start_ts=t0, end_ts=t0 + 100, regions=["R<1>"]),
        probe_samples=samples, business=[], stock_states=[], on_screen=[], incidents=[local],
        deliveries=[],
    )


def test_verdict_minutes_and_percentages_for_a_known_case() -> None:
    data = _known_show()
    html, headline = build_report(data)
    v = headline["verdicts"]["R<1>"]
    assert (v["good_pct"], v["degraded_pct"], v["failed_pct"], v["unknown_pct"]) == (
        68.0, 12.0, 10.0, 10.0)
    row = parse(html[html.index('<table class="verdicts"'):html.index("</table>")]).text
    assert "1.1 min 68.0%" in row and "0.2 min 10.0%" in row
    assert "R<1>" in row and "R&lt;1&gt;" in html  # a region name is text too
    # Stricter share: a single failing probe of two no longer fails the region.
    strict = ReportThresholds(min_probe_share=1.0)
    table = ProbeTable.from_samples(data.probe_samples, t0=data.show.start_ts)
    (rv,) = region_verdicts(table, data.show.start_ts, data.show.end_ts or 0, ["R<1>"], strict)
    assert rv.seconds == {"good": 78, "degraded": 12, "failed": 0, "unknown": 10}
    # Counting every one-second blip (the old rule) would call more degraded.
    blips = ReportThresholds(min_bad_s=1)
    (rv,) = region_verdicts(table, data.show.start_ts, data.show.end_ts or 0, ["R<1>"], blips)
    assert rv.seconds["degraded"] == 13


def test_markup_in_titles_and_names_is_shown_as_text() -> None:
    evil_title = '<script>alert("t")</script> Big sale'
    evil_sku = '<img src=x onerror=alert(1)>'
    data = generate_show(duration_s=300, n_regions=3, title=evil_title,
                         sku_names={"SKU-2": evil_sku}, show_id="evil<b>&show")
    data.incidents[0].summary = "<svg onload=alert(2)>"
    data.incidents[0].evidence[0].text = "</text><script>alert(3)</script>"
    html = render_report(data)
    page = parse(html)
    assert "script" not in page.tags and "img" not in page.tags
    assert not any(name.startswith("on") for name, _ in page.attrs)
    assert evil_title in page.text  # the reader sees the characters
    assert evil_sku in page.text
    assert "<svg onload=alert(2)>" in page.text
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in html or \
        "&lt;script&gt;alert(&quot;t&quot;)" in html
    # Inside SVG text (lane labels carry the SKU name in a tooltip).
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_write_report_and_index(tmp_path: Path) -> None:
    a = generate_show(duration_s=300, n_regions=3, show_id="show-a", title="First <show>")
    b = generate_show(duration_s=240, n_regions=3, show_id="../b/../../etc", title="Second")
    b.show.start_ts += 86400
    pa = write_report(a, tmp_path)
    pb = write_report(b, tmp_path)
    assert pa == tmp_path / "show-a.html" and pa.is_file()
    assert pb.parent == tmp_path and pb.name == report_filename("../b/../../etc")
    assert "/" not in pb.name and not pb.name.startswith(".")
    write_report(a, tmp_path)  # again: replaced, not duplicated
    index = json.loads((tmp_path / "index.json").read_text())
    assert [r["show_id"] for r in index["reports"]] == ["../b/../../etc", "show-a"]
    page = parse((tmp_path / "index.html").read_text())
    assert "First <show>" in page.text and "Second" in page.text
    assert ("href", "show-a.html") in page.attrs
    (tmp_path / "index.json").write_text("{not json")  # corrupt: rebuilt, not a crash
    write_report(a, tmp_path)
    assert len(json.loads((tmp_path / "index.json").read_text())["reports"]) == 1


def test_bucketing_keeps_extremes() -> None:
    sec = np.arange(0, 10_000, dtype=np.int64)
    v = np.full(10_000, 100.0)
    v[5_000] = 5_000.0  # a one-second spike
    v[7_000] = np.nan  # unknown, not zero
    grid = grid_for(0.0, 10_000.0, 50)
    assert grid.width_s == 300 and grid.n == 34  # widths a reader can name
    b = bucket_series(sec, v, grid)
    assert np.nanmax(b.hi) == 5_000.0
    assert np.nanmin(b.lo) == 100.0
    assert b.n.sum() == 9_999


def test_probes_on_different_sub_second_offsets_fill_every_bucket() -> None:
    """Two probes stamping their seconds at +0.07 and +0.93 with jitter:
    every second of each is found once, so no bucket is empty (an empty
    bucket breaks a chart's line into dots)."""
    rng = np.random.default_rng(3)
    t0 = 1_700_000_000.0
    n = 600
    ts, keys = [], []
    for k, phase in enumerate((0.07, 0.93)):
        jitter = np.clip(rng.normal(0, 0.06, n), -0.3, 0.3)
        jitter[::97] = 0.27
        ts.append(t0 + np.arange(n) + phase + jitter + (phase < 0.5))
        keys.append(np.full(n, k))
    sec = second_slots(np.concatenate(ts), np.concatenate(keys).astype(np.int64), t0)
    for k in range(2):
        assert sorted(sec[k * n:(k + 1) * n].tolist()) == list(range(n))
    # A 3-minute show has fewer seconds than chart points: buckets stay whole seconds.
    grid = grid_for(t0, t0 + 180, 320)
    assert grid.width_s == 1 and grid.n == 180
    b = bucket_series(sec, np.ones(2 * n), grid)
    assert (b.n == 2).all()


def _line_d(html: str, name: str) -> str:
    """The path of the line named ``name`` (its title) in the first chart
    holding one."""
    m = re.search(r'<path d="([^"]*)" fill="none"[^>]*><title>' + re.escape(name) + "</title>",
                  html)
    assert m, name
    return m.group(1)


def test_lines_are_continuous_on_real_timing(rendered: Rendered) -> None:
    html, _, _ = rendered
    # One unbroken line per signal where the probes reported every second
    # (the generated probes jitter around their own sub-second phase).
    clean = _section(html, "regions")
    clean = clean[clean.index('id="region-1"'):]
    for name in ("RTT, mean of probes", "bitrate, mean of probes"):
        assert _line_d(clean, name).count("M") == 1, name
    assert _line_d(_section(html, "timeline"), "all regions").count("M") == 1


def test_orders_bucket_follows_the_show_length() -> None:
    for minutes, unit in ((1, "per 2 s"), (3, "per 5 s"), (180, "per 5 min")):
        data = generate_show(duration_s=60 * minutes, n_regions=3, probes_per_region=1,
                             validate=False)
        if minutes == 180:
            data.probe_samples = data.probe_samples[:10]  # the business part is what counts
        html = render_report(data)
        bars = re.search(r'aria-label="orders ' + unit + '"', html)
        assert bars, (minutes, unit)


def test_empty_show_renders() -> None:
    data = ShowData(show=Show(show_id="e", start_ts=START_TS), probe_samples=[], business=[],
                    stock_states=[], on_screen=[], incidents=[], deliveries=[])
    text = parse(render_report(data)).text
    assert "No incidents were found" in text and "No stock states" in text


class _DictStore:
    """The Store read side over dicts: enough for load_show_data."""

    def __init__(self, data: ShowData) -> None:
        self.data = data
        self.closed = False

    def get_show(self, show_id: str) -> Show | None:
        return self.data.show if show_id == self.data.show.show_id else None

    def probe_samples(self, show_id: str, *a: object, **k: object) -> list[ProbeSample]:
        return self.data.probe_samples

    def business(self, show_id: str, *a: object, **k: object) -> list[BusinessSample]:
        return self.data.business

    def stock_states(self, show_id: str) -> list[StockState]:
        return self.data.stock_states

    def on_screen(self, show_id: str) -> list[OnScreen]:
        return self.data.on_screen

    def incidents(self, show_id: str) -> list[Incident]:
        return self.data.incidents

    def alert_deliveries(self, show_id: str) -> list[AlertDelivery]:
        return self.data.deliveries

    def close(self) -> None:
        self.closed = True


def test_command_writes_report_and_rejects_unknown_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import qosmon.store

    data = generate_show(duration_s=180, n_regions=3, show_id="s1")
    store = _DictStore(data)
    def open_store(url: str, *, read_only: bool = False) -> _DictStore:
        assert read_only  # a report never writes to the store
        return store

    monkeypatch.setattr(qosmon.store, "open_store", open_store, raising=False)
    with pytest.raises(UnknownShowError):
        load_show_data(store, "nope")  # type: ignore[arg-type]
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    rc = command.main(parser.parse_args(["--show", "nope", "--out", str(tmp_path)]))
    assert rc == 2 and "no show with id 'nope'" in capsys.readouterr().err
    rc = command.main(parser.parse_args(["--show", "s1", "--out", str(tmp_path / "r")]))
    assert rc == 0 and (tmp_path / "r" / "s1.html").is_file() and store.closed
