"""The show report in English and Simplified Chinese: every word the report
writes has its Chinese, a Chinese report reads as Chinese (headings, tables,
charts, the index), incident times carry the region's local time, and the
language is chosen per report (library, command, the live pipeline's
config)."""

from __future__ import annotations

import argparse
import re
import string
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from qosmon.collector.command import build_pipeline
from qosmon.collector.config import CollectorConfig
from qosmon.i18n import ZH, LanguageError
from qosmon.model import AlertStatus, ConnectionState, Severity
from qosmon.regions import ZoneError
from qosmon.report import command
from qosmon.report.experience import WEIGHTS
from qosmon.report.output import write_report
from qosmon.report.render import _NAV, render_page, render_sections
from qosmon.report.sections import build_sections
from qosmon.report.vocabulary import CAUSE_TEXT, LEVEL_TEXT, METRIC_TEXT, STATUS_ORDER
from qosmon.store import open_store
from tests.sample_show import generate_show
from tests.test_report import parse

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "qosmon" / "report"
# Units written the same way in Chinese.
UNIT_SYMBOLS = {"%", "ms", "kbps", "fps"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _asked_texts() -> set[str]:
    """Every ``t("...")`` of the report's templates and Python code."""
    texts: set[str] = set()
    files = [*REPORT.glob("templates/**/*.j2"), *REPORT.glob("**/*.py")]
    for f in files:
        texts |= set(re.findall(r'\bt\("([^"]+)"\)', f.read_text(encoding="utf-8")))
    return texts


def test_every_word_of_the_live_pages_goes_through_the_translator() -> None:
    """The live page's templates write no word of their own outside ``t()``
    (so ``test_every_report_text_has_chinese`` sees all of them), and the
    texts the collector's pages hand in as keys have their Chinese."""
    live = sorted((REPORT / "templates" / "live").glob("*.html.j2"))
    assert [f.name for f in live] == ["body.html.j2", "login.html.j2", "page.html.j2",
                                      "shows.html.j2"]
    for f in live:
        text = f.read_text(encoding="utf-8")
        text = re.sub(r"<style>.*?</style>", " ", text, flags=re.S)
        text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|<[^>]*>", " ", text, flags=re.S)
        assert set(re.findall(r"[A-Za-z]{2,}", text)) <= {"qosmon"}, f.name
    asked = _asked_texts()
    for english in ("Open incidents ({n})", "Probes: {up} of {n} up", "Stock on screen",
                    "{s} s ago", "no samples", "Read token needed"):
        assert english in asked and english in ZH, english
    # Words the live page picks by value: a probe's state and connection.
    picked = {"up", "down", *(c.value.replace("_", " ") for c in ConnectionState)}
    assert sorted(picked - set(ZH)) == []
    routes = (ROOT / "qosmon" / "collector" / "routes" / "live.py").read_text(encoding="utf-8")
    problems = re.findall(r'_login_page\([^)]*?"([^"]+)"\)', routes)
    assert problems and all(p in ZH for p in problems), problems


def _fields(text: str) -> list[str]:
    return sorted(f for _, f, _, _ in string.Formatter().parse(text) if f)


def test_every_report_text_has_chinese() -> None:
    asked = _asked_texts()
    assert len(asked) > 150
    assert sorted(asked - set(ZH)) == []
    # Words the page picks from data: the vocabulary's tables, statuses,
    # severities, alert states, the score's parts, section names, page kinds.
    picked = {*STATUS_ORDER, *LEVEL_TEXT.values(), *(s.value for s in Severity),
              *(s.value for s in AlertStatus), *WEIGHTS, *(label for _, label in _NAV.values()),
              "show report", "live show", "whole show", "region", "isp", "edge node",
              "warehouse", "probe id"}
    for label, meaning in CAUSE_TEXT.values():
        picked |= {label, meaning}
    for label, unit in METRIC_TEXT.values():
        picked |= {label, unit}
    assert sorted(picked - set(ZH) - UNIT_SYMBOLS) == []
    # A translation keeps every figure its English text has (a dropped
    # {n} would lose the number, a misspelt one would break the page).
    for english in asked | picked:
        if english in ZH:
            assert _fields(ZH[english]) == _fields(english), english


def _texts_of(html: str, tags: tuple[str, ...]) -> list[str]:
    out = []
    for tag in tags:
        for m in re.finditer(rf"<{tag}\b[^>]*>(.*?)</{tag}>", html, re.S):
            out.append(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(1))).strip())
    return out


def test_chinese_report_reads_as_chinese(tmp_path: Path) -> None:
    data = generate_show(duration_s=1800)
    page = write_report(data, tmp_path, lang="zh")
    html = page.read_text(encoding="utf-8")
    text = parse(html).text
    assert '<html lang="zh-Hans">' in html
    headings = _texts_of(html, ("h2",))
    assert headings == ["时间线", "地区", "故障事件", "库存", "探针", "发现与注入对比"]
    for heading in ("各地区结论", "首帧时间", "仅单个探针的问题（不计入结论）", "建议操作", "证据"):
        assert heading in _texts_of(html, ("h3",)), heading
    for english in ("Timeline", "Regions", "Incidents", "Inventory", "Probes", "Evidence",
                    "Verdict per region", "Suggested actions", "Time to first frame",
                    "Found vs injected", "peak viewers", "estimated loss", "into the show",
                    "still running", "no data", "self-contained"):
        assert english not in text, english
    # Headings, table heads, facts and captions hold no English word of the
    # page's own (data such as regions and SKUs is upper case or numbered).
    own = _texts_of(html, ("h2", "th", "dt", "figcaption", "summary"))
    own += [m for m in re.findall(r'class="l">([^<]*)<', html)]
    leftovers = {w for s in own for w in re.findall(r"\b[a-z]{3,}\b", s)} - UNIT_SYMBOLS
    assert leftovers == set(), leftovers
    # Charts too: axis units, legends, thresholds.
    assert "在线观众" in html and "每个时间段的最小值-最大值" in html
    assert "往返时延" in html and "≥ 250 ms 判为故障" in html
    # The words of the data stay as they were, and the footer says so.
    assert data.show.title in text and "按原样显示" in text
    # Durations, verdicts and causes in Chinese.
    assert re.search(r"\d+ 分钟", text) and "良好" in text and "节点故障" in text


def test_incident_times_in_utc_and_the_region_s_own_time(tmp_path: Path) -> None:
    data = generate_show(duration_s=1800)
    inc = next(i for i in data.incidents if i.scope.get("region") == "ID")
    jakarta = datetime.fromtimestamp(inc.start_ts, UTC).astimezone(ZoneInfo("Asia/Jakarta"))
    utc = datetime.fromtimestamp(inc.start_ts, UTC).strftime("%H:%M:%S")
    en = parse(write_report(data, tmp_path / "en").read_text(encoding="utf-8")).text
    assert f"{utc} UTC ({jakarta:%H:%M:%S} Asia/Jakarta)" in en
    zh = parse(write_report(data, tmp_path / "zh", lang="zh").read_text(encoding="utf-8")).text
    assert f"{utc} UTC（当地 {jakarta:%H:%M:%S}，Asia/Jakarta）" in zh
    # Past midnight where the viewers are: the local date is said.
    sg = next(i for i in data.incidents if i.scope.get("region") == "SG")
    here = datetime.fromtimestamp(sg.start_ts, UTC).astimezone(ZoneInfo("Asia/Singapore"))
    assert here.day != datetime.fromtimestamp(sg.start_ts, UTC).day
    assert (f"{datetime.fromtimestamp(sg.start_ts, UTC):%H:%M:%S} UTC "
            f"({here:%Y-%m-%d %H:%M:%S} Asia/Singapore)") in en
    # So do the alerts sent about an incident.
    views = build_sections(data, only=["incidents"])
    assert views.incidents is not None
    row = next(v for v in views.incidents.incidents if v.id == inc.incident_id)
    sent = next(d.ts for d in data.deliveries if d.incident_id == inc.incident_id and d.ok)
    assert row.alerts.first_sent == (
        f"{datetime.fromtimestamp(sent, UTC):%H:%M:%S} UTC "
        f"({datetime.fromtimestamp(sent, UTC).astimezone(ZoneInfo('Asia/Jakarta')):%H:%M:%S}"
        " Asia/Jakarta)")
    # A deployment's own zone for a region wins over the built-in table.
    views = build_sections(data, only=["incidents"], zones={"ID": "Asia/Kolkata"})
    assert views.incidents is not None
    row = next(v for v in views.incidents.incidents if v.id == inc.incident_id)
    kolkata = datetime.fromtimestamp(inc.start_ts, UTC).astimezone(ZoneInfo("Asia/Kolkata"))
    assert row.start == f"{utc} UTC ({kolkata:%H:%M:%S} Asia/Kolkata)"
    with pytest.raises(ZoneError, match="unknown time zone 'Asia/Atlantis'"):
        build_sections(data, zones={"ID": "Asia/Atlantis"})


def test_english_report_has_no_chinese_and_the_index_follows_the_language(
    tmp_path: Path,
) -> None:
    data = generate_show(duration_s=600, n_regions=2)
    html = write_report(data, tmp_path / "en").read_text(encoding="utf-8")
    assert '<html lang="en">' in html and not CJK.search(html)
    index = (tmp_path / "en" / "index.html").read_text(encoding="utf-8")
    assert not CJK.search(index) and "Show reports" in index
    write_report(data, tmp_path / "zh", lang="zh")
    index = (tmp_path / "zh" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-Hans">' in index and "<h1>直播报告</h1>" in index
    assert "10 分钟" in index and "Show reports" not in index


def test_sections_keep_their_language() -> None:
    data = generate_show(duration_s=300, n_regions=2)
    views = build_sections(data, only=["headline", "incidents"], lang="zh")
    (frag,) = render_sections(views, ["incidents"])
    assert "<h2>故障事件</h2>" in frag
    page = render_page(views, ["headline", "incidents"], kind="live show", refresh_s=15)
    assert '<html lang="zh-Hans">' in page and "直播实况" in page
    assert render_page(views, ["headline"], lang="zh") == render_page(views, ["headline"])
    with pytest.raises(ValueError, match="build_sections"):
        render_page(views, lang="en")
    with pytest.raises(LanguageError, match="unknown language 'fr'"):
        build_sections(data, lang="fr")


def test_command_lang_and_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = generate_show(duration_s=300, n_regions=2, show_id="s1")
    db = tmp_path / "q.db"
    store = open_store(f"sqlite:///{db}")
    store.put_show(data.show)
    store.write_probe_batch("b1", data.probe_samples)
    store.put_incidents("s1", data.incidents)
    store.close()
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    base = ["--show", "s1", "--store", f"sqlite:///{db}"]
    rc = command.main(parser.parse_args([*base, "--out", str(tmp_path / "r"), "--lang", "zh",
                                         "--zone", "ID=Asia/Makassar"]))
    assert rc == 0, capsys.readouterr().err
    html = (tmp_path / "r" / "s1.html").read_text(encoding="utf-8")
    assert '<html lang="zh-Hans">' in html
    assert "Asia/Makassar" in html  # the show's ID incidents, in the zone given
    rc = command.main(parser.parse_args([*base, "--out", str(tmp_path / "x"),
                                         "--zone", "ID=Mars/Olympus"]))
    assert rc == 2 and "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([*base, "--out", str(tmp_path / "x"), "--lang", "fr"])
    assert exc.value.code == 2


async def test_live_pipeline_writes_reports_in_the_configured_language(tmp_path: Path) -> None:
    data = generate_show(duration_s=300, n_regions=2, show_id="live-zh")
    assert data.show.end_ts is not None
    store = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    store.put_show(data.show)
    store.write_probe_batch("b1", data.probe_samples)
    store.put_incidents("live-zh", data.incidents)
    config = CollectorConfig.model_validate({
        "port": 0, "live": {"report_dir": str(tmp_path / "reports"), "report_language": "zh"},
    })
    pipeline = build_pipeline(config, tmp_path / "collector.toml", store)
    try:
        pipeline.on_show(data.show)
        await pipeline.tick(data.show.end_ts + 1)
    finally:
        await pipeline.close()  # waits for the report being written
        store.close()
    out = tmp_path / "reports"
    for name in ("live-zh.html", "index.html", "history.html"):
        assert '<html lang="zh-Hans">' in (out / name).read_text(encoding="utf-8"), name
    with pytest.raises(ValueError, match="report_language"):
        CollectorConfig.model_validate({"live": {"report_language": "fr"}})
