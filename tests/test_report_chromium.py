"""The report as a browser sees it: opened in headless Chromium (Debian
package) on a desktop and a phone, screenshotted, printed, in English and in
Simplified Chinese; nothing requested from the network and no script error."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from qosmon.report.output import write_report
from tests.chromium import Viewport, chromium_path, inspect_page
from tests.sample_show import generate_show

BINARY = chromium_path()
pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        BINARY is None, reason="headless Chromium not installed (Debian package 'chromium')"
    ),
]

TITLE = '<script>alert("x")</script> Mega sale & <b>gadgets</b>'
SKU = '<img src=x onerror=alert(1)> Gimbal'


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_report_in_chromium(tmp_path: Path, lang: str) -> None:
    assert BINARY is not None
    data = generate_show(duration_s=1800, title=TITLE, sku_names={"SKU-2": SKU})
    out = tmp_path / "reports"
    page = write_report(data, out, lang=lang)
    shots = Path(os.environ.get("QOSMON_SCREENSHOTS", tmp_path / "shots"))
    if lang != "en":
        shots /= lang
    report = await inspect_page(
        BINARY, page.as_uri(), shots,
        [Viewport("desktop", 1280, 900), Viewport("phone", 390, 844, mobile=True, scale=2)],
        evaluate={
            "h1": "document.querySelector('h1').textContent",
            "lang": "document.documentElement.lang",
            "h2": "[...document.querySelectorAll('h2')].map(h => h.textContent)",
            "title": "document.title",
            "scripts": "document.scripts.length",
            "imgs": "document.images.length",
            "svgs": "document.querySelectorAll('svg.chart').length",
            "incidents": "document.querySelectorAll('article.incident').length",
            "body_width": "document.body.scrollWidth",
            "inner_width": "window.innerWidth",
        },
        pdf=True,
    )
    # The only request is the file itself (once per viewport).
    assert set(report.requests) == {page.as_uri()}, report.requests
    assert report.exceptions == []
    assert report.console_errors == []
    # Outside markup arrived as text, not as elements.
    ev = report.evaluated
    assert ev["h1"] == TITLE
    assert ev["lang"] == {"en": "en", "zh": "zh-Hans"}[lang]
    assert ev["h2"][:3] == {"en": ["Timeline", "Regions", "Incidents"],
                            "zh": ["时间线", "地区", "故障事件"]}[lang]
    assert ev["title"].startswith(TITLE)
    assert ev["scripts"] == 0 and ev["imgs"] == 0
    assert ev["incidents"] == len(data.incidents)
    assert ev["svgs"] >= 6 * len(data.show.regions)
    # Neither view is blank or cut: real pixels, a page of full height, and
    # on the phone no sideways scrolling of the page itself (charts scroll
    # inside their own box).
    w, h = _png_size(report.screenshots["desktop"])
    assert w == 1280 and h > 3000
    pw, ph = _png_size(report.screenshots["phone"])
    assert pw == 390 * 2 and ph > h
    assert report.evaluated["phone:scroll_width"] <= 390
    assert report.screenshots["desktop"].stat().st_size > 100_000
    assert report.pdf is not None and report.pdf.read_bytes()[:5] == b"%PDF-"
    assert report.pdf.stat().st_size > 50_000


async def test_index_in_chromium(tmp_path: Path) -> None:
    assert BINARY is not None
    out = tmp_path / "reports"
    for i in range(3):
        data = generate_show(duration_s=300, n_regions=3, show_id=f"show-{i}",
                             title=f"Show {i} <i>live</i>", seed=i)
        data.show.start_ts += i * 86400
        write_report(data, out)
    shots = Path(os.environ.get("QOSMON_SCREENSHOTS", tmp_path / "shots")) / "index"
    index = out / "index.html"
    report = await inspect_page(
        BINARY, index.as_uri(), shots, [Viewport("desktop", 1280, 700)],
        evaluate={"links": "[...document.querySelectorAll('a')].map(a => a.textContent)"},
    )
    assert set(report.requests) == {index.as_uri()}
    assert report.exceptions == [] and report.console_errors == []
    assert report.evaluated["links"] == ["Show 2 <i>live</i>", "Show 1 <i>live</i>",
                                         "Show 0 <i>live</i>"]
