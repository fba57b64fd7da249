"""The report's sections as a library: a chosen subset, on a show still
running, rendered into another page; and the files a report folder holds."""

from __future__ import annotations

import json
import os
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from qosmon.model import Cause
from qosmon.report.output import write_report
from qosmon.report.render import page_style, render_page, render_sections
from qosmon.report.sections import SECTIONS, build_sections
from tests.sample_show import generate_show


def test_sections_of_a_show_still_running() -> None:
    data = generate_show(duration_s=1200, n_regions=3)
    t0 = data.show.start_ts
    data.show.end_ts = None
    now = t0 + 600
    views = build_sections(data, now=now, only=["headline", "incidents", "stock"])
    assert views.timeline is None and views.regions is None and views.probes is None
    assert views.context.span.t1 == now and views.context.live
    head = views.headline
    assert head is not None and head.live and head.duration == "10 min"
    # Only what was known at ``now``: incidents begun by then, the stock-out
    # (begun at 9 min) still open, no sample stamped later.
    assert views.incidents is not None
    begun = [i for i in data.incidents if i.start_ts <= now]
    assert [v.id for v in views.incidents.incidents] == [
        i.incident_id for i in sorted(begun, key=lambda i: i.start_ts)]
    out = next(v for v in views.incidents.incidents if v.cause == "stock-out")
    assert out.end == "still open"
    assert views.context.table.ts.max() <= now
    assert views.stock is not None and all(a.ts <= now for a in views.stock.actions)

    # Rendered alone, each section is a fragment with the report's anchors.
    (frag,) = render_sections(views, ["incidents"])
    assert frag.startswith('<section id="incidents">') and "<html" not in frag
    page = render_page(views, ["headline", "incidents"], kind="live show", refresh_s=15)
    assert '<meta http-equiv="refresh" content="15">' in page
    assert "(still running)" in page and "Live show · show-demo-1" in page
    assert 'href="#incidents"' in page and 'href="#timeline"' not in page
    assert '<section id="timeline">' not in page and '<section id="headline"' in page
    assert "--good:" in page_style()  # the same styles for another page


def test_unknown_section_is_refused() -> None:
    data = generate_show(duration_s=120, n_regions=1, probes_per_region=1)
    with pytest.raises(ValueError, match="no report section 'charts'"):
        build_sections(data, only=["charts"])
    assert SECTIONS[0] == "headline" and "injected" in SECTIONS


def test_injected_section_only_for_demo_shows() -> None:
    data = generate_show(duration_s=300, n_regions=3)
    assert build_sections(data, only=["injected"]).injected is not None
    data.injected = None
    views = build_sections(data)
    assert views.injected is None
    assert 'id="injected"' not in render_page(views)
    assert any(i.cause == Cause.PROBE_LOCAL for i in data.incidents)


def test_report_files_are_readable_by_the_web_server(tmp_path: Path) -> None:
    old = os.umask(0o077)  # even a strict umask: the folder is meant to be served
    try:
        path = write_report(generate_show(duration_s=180, n_regions=3), tmp_path)
    finally:
        os.umask(old)
    for p in (path, tmp_path / "index.html", tmp_path / "index.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    assert not list(tmp_path.glob("*.tmp"))


def test_reports_written_at_once_all_reach_the_index(tmp_path: Path) -> None:
    shows = [generate_show(duration_s=120, n_regions=2, probes_per_region=1,
                           show_id=f"s{i}", seed=i) for i in range(4)]
    threads = [threading.Thread(target=write_report, args=(d, tmp_path)) for d in shows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    index = json.loads((tmp_path / "index.json").read_text())
    assert sorted(r["show_id"] for r in index["reports"]) == ["s0", "s1", "s2", "s3"]


def test_a_starved_probe_is_said_and_left_out_of_the_verdict() -> None:
    """Both probes of one region lose 30 % for 100 s while the kernel drops
    datagrams at their own sockets and their loops run late: the probes
    section says they were overloaded, and the region's verdict does not
    call those seconds failed; the same loss from probes that kept up is."""
    data = generate_show(duration_s=300, n_regions=2, probes_per_region=2)
    region = data.show.regions[0]
    t0 = data.show.start_ts

    def with_health(starved: bool, lossy: bool = True) -> list[object]:
        out = []
        for s in data.probe_samples:
            hit = lossy and s.region == region and 100 <= s.ts - t0 < 200
            out.append(s.model_copy(update={
                "loss_pct": 30.0 if hit else s.loss_pct,
                "socket_drops": 40 if hit and starved else 0,
                "probe_lag_ms": 300.0 if hit and starved else 2.0}))
        return out

    def failed_s(starved: bool, lossy: bool = True) -> int:
        d = replace(data, probe_samples=with_health(starved, lossy), incidents=[])
        views = build_sections(d, only=["regions", "probes"])
        (v,) = [v for v in views.context.verdicts if v.region == region]
        return v.seconds.get("failed", 0)

    starved = replace(data, probe_samples=with_health(True), incidents=[])
    views = build_sections(starved, only=["regions", "probes"])
    assert views.probes is not None
    rows = {p.probe: p for p in views.probes.probes}
    hit = [p for p in rows.values() if p.region == region]
    assert len(hit) == 2
    for p in hit:
        assert p.overloaded and p.drop_s == p.late_s == 100 and p.drops == 4000
        assert p.excluded_s == 100
    assert all(not p.overloaded and p.health_known for p in rows.values() if p.region != region)
    # The show's own faults elsewhere in the region stay what they were.
    starved_failed = failed_s(True)
    assert starved_failed <= failed_s(False, lossy=False)
    # The same loss from probes that kept up fails (nearly) all its seconds.
    assert failed_s(False) >= starved_failed + 90
    (en,) = render_sections(views, ["probes"])
    assert "probe overloaded" in en
    assert "100 s with kernel drops (4k datagrams), 100 s with its loop ≥ 200 ms late" in en
    zh = build_sections(starved, only=["probes"], lang="zh")
    (page,) = render_sections(zh, ["probes"])
    assert "探针过载" in page and "自身状况" in page
