"""The history page as a browser sees it: opened from the file in headless
Chromium on a desktop and a phone; nothing requested but the file, no
script or console error, links to each show's report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qosmon.history.analysis import Change, analyse
from qosmon.history.render import write_history
from qosmon.history.summary import summarize_show
from tests.chromium import Viewport, chromium_path, inspect_page
from tests.history_shows import CHANGE_TS, pattern_shows

BINARY = chromium_path()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.server,
    pytest.mark.skipif(BINARY is None,
                       reason="headless Chromium not installed (Debian package 'chromium')"),
]


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_history_in_chromium(tmp_path: Path, lang: str) -> None:
    assert BINARY is not None
    shows = pattern_shows()
    shows[0].show.title = '<script>alert("x")</script> Friday <b>deals</b>'
    summaries = [summarize_show(d, now=d.show.start_ts + 1e4) for d in shows]
    html, _ = write_history(analyse(summaries, [Change(CHANGE_TS, "CDN <switch>")]),
                            tmp_path / "reports", lang)
    shots = Path(os.environ.get("QOSMON_SCREENSHOTS", tmp_path / "shots")) / f"history-{lang}"
    report = await inspect_page(
        BINARY, html.as_uri(), shots,
        [Viewport("desktop", 1280, 900), Viewport("phone", 390, 844, mobile=True, scale=2)],
        evaluate={
            "scripts": "document.scripts.length",
            "points": "document.querySelectorAll('svg.chart circle').length",
            "point_links": "[...document.querySelectorAll('svg a')].map(a => "
                           "a.getAttribute('href')).slice(0, 2)",
            "tables": "document.querySelectorAll('table').length",
            "first_incident_show": "[...document.querySelectorAll('#incidents td a')]"
                                   ".map(a => a.textContent).slice(-1)[0]",
            "lang": "document.documentElement.lang",
        },
    )
    assert set(report.requests) == {html.as_uri()}, report.requests
    assert report.exceptions == [] and report.console_errors == []
    ev = report.evaluated
    assert ev["scripts"] == 0
    assert ev["points"] == 24  # 12 shows x 2 regions, each a point
    assert ev["point_links"] == ["w0-tue.html", "w0-fri.html"]
    assert ev["tables"] == 5
    # Outside markup arrived as text.
    assert ev["first_incident_show"] == '<script>alert("x")</script> Friday <b>deals</b>'
    assert ev["lang"] == ("zh-Hans" if lang == "zh" else "en")
    assert report.evaluated["phone:scroll_width"] <= 390
    assert report.screenshots["desktop"].stat().st_size > 50_000
