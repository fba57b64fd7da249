"""History across shows: stored shows with known patterns in, the patterns
named in the page and its JSON out, through the real command and store."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from qosmon.history.analysis import WEEKDAYS, Change, analyse
from qosmon.history.collect import load_summaries, store_summary
from qosmon.history.render import KIND_TEXT
from qosmon.history.summary import summarize_show
from qosmon.i18n import ZH
from qosmon.model import Cause, ConnectionState
from qosmon.report.experience import combine, experience_scores
from qosmon.report.signals import ProbeTable
from qosmon.report.vocabulary import CAUSE_TEXT
from qosmon.store.sqlite import SqliteStore
from tests.history_shows import CHANGE_TS, make_show, pattern_shows

ROOT = Path(__file__).resolve().parents[1]


def _store(path: Path, summarize_all: bool = False) -> None:
    store = SqliteStore(path)
    try:
        for k, data in enumerate(pattern_shows()):
            store.put_show(data.show)
            store.write_probe_batch(f"batch-{data.show.show_id}", data.probe_samples)
            store.put_incidents(data.show.show_id, data.incidents)
            store.write_stock_states(data.stock_states)
            # Most shows got their summary when they ended; a few are older
            # than that and must be summarized from raw data on the fly.
            if summarize_all or k % 4:
                store_summary(store, data, now=data.show.end_ts or 0.0)
    finally:
        store.close()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qosmon.cli", "history", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_score_is_100_for_a_clean_region_and_drops_with_freezes_and_loss() -> None:
    clean = make_show("c", 1_800_000_000.0, {})
    bad = make_show("b", 1_800_000_000.0, {"TH": (0, 601, Cause.PACKET_LOSS, {"region": "TH"})})
    for data, th_expected in ((clean, 100.0), (bad, None)):
        table = ProbeTable.from_samples(data.probe_samples, data.show.regions)
        scores = {s.region: s for s in experience_scores(table, data.show.regions)}
        assert scores["ID"].score == 100.0
        if th_expected is not None:
            assert scores["TH"].score == th_expected
        else:
            # Frozen half of every second and 20 % loss throughout: smoothness
            # and network are 0, startup and chat still fine.
            assert scores["TH"].smoothness == 0.0 and scores["TH"].network == 0.0
            assert scores["TH"].score == pytest.approx(30.0)
    # Nothing measured is unknown, never a perfect score.
    assert combine(None, {"smoothness": 1.0}) is None
    down = make_show("d", 1_800_000_000.0, {})
    for s in down.probe_samples:
        if s.region == "ID":
            s.state = ConnectionState.FAILED
    table = ProbeTable.from_samples(down.probe_samples, down.show.regions)
    assert {s.region: s.score for s in experience_scores(table, ["ID"])}["ID"] == 0.0


def test_analysis_names_each_pattern() -> None:
    summaries = [summarize_show(d, now=0.0 + d.show.start_ts + 1e4) for d in pattern_shows()]
    h = analyse(summaries, [Change(CHANGE_TS, "CDN switch")])
    # Where: TH's AIS edge node leads (18 incident minutes in 6 of 12 shows).
    top = h.network[0]
    assert (top.region, top.isp, top.edge_node) == ("TH", "AIS", "bkk-2")
    assert top.incidents == 6 and len(top.shows) == 6
    assert top.incident_minutes == pytest.approx(18.0)
    assert top.causes == {"packet_loss": 6}
    # When: every Friday evening show in Bangkok, and no other TH slot.
    th_slots = [s for s in h.slots if s.region == "TH"]
    assert [s.label for s in th_slots] == ["Fri 18:00-21:00"]
    assert (len(th_slots[0].shows_failing), len(th_slots[0].shows_aired)) == (6, 6)
    assert th_slots[0].zone == "Asia/Bangkok"
    assert h.slots[0].region == "TH"
    # Stock: the lamp sold out in the same warehouse twice.
    assert [(k.sku, k.warehouse, k.kind, k.shows) for k in h.skus] == [
        ("SKU-LAMP", "WH-TH", "sold_out", ["w1-fri", "w4-tue"])]
    assert h.skus[0].refill_units == [420, 420]
    # The change fixed ID and did nothing to TH.
    verdicts = {c.region: c for c in h.changes}
    assert verdicts["ID"].verdict == "better"
    assert verdicts["ID"].before.shows == 6 and verdicts["ID"].after.shows == 6
    assert verdicts["ID"].after.mean_score == 100.0
    assert verdicts["ID"].before.mean_score is not None
    assert verdicts["ID"].before.mean_score < 95
    assert verdicts["TH"].verdict == "no clear change"
    # Too few shows on a side is said, not guessed.
    early = analyse(summaries, [Change(summaries[2].start_ts, "new node")])
    assert {c.verdict for c in early.changes} == {"too few shows to tell"}


def test_command_writes_page_and_json_from_the_store(tmp_path: Path) -> None:
    db = tmp_path / "shows.db"
    _store(db)
    out = tmp_path / "reports"
    change_day = datetime.fromtimestamp(CHANGE_TS, UTC).strftime("%Y-%m-%d")
    res = _run("--store", f"sqlite:///{db}", "--out", str(out),
               "--change", f"{change_day}=CDN switch")
    assert res.returncode == 0, res.stderr
    assert "3 show(s) had no stored summary" in res.stderr
    data = json.loads((out / "history.json").read_text(encoding="utf-8"))
    assert len(data["shows"]) == 12
    assert data["network"][0]["edge_node"] == "bkk-2" and data["network"][0]["shows"] == 6
    assert data["time_slots"][0] == {
        "region": "TH", "zone": "Asia/Bangkok", "weekday": "Fri", "slot": "18:00-21:00",
        "shows_aired": 6, "shows_failing": 6, "incident_minutes": 18.0,
        "viewers_lost": 240.0, "orders_lost": 18.0,
    }
    assert data["skus"][0]["sku"] == "SKU-LAMP" and len(data["skus"][0]["shows"]) == 2
    id_change = next(c for c in data["changes"] if c["region"] == "ID")
    assert id_change["label"] == "CDN switch" and id_change["verdict"] == "better"
    html = (out / "history.html").read_text(encoding="utf-8")
    assert "bkk-2" in html and "Fri 18:00-21:00" in html and "SKU-LAMP" in html
    assert 'href="w0-fri.html"' in html  # the points and incidents open each show's report
    # --since/--until select by show start.
    res = _run("--store", f"sqlite:///{db}", "--out", str(tmp_path / "late"),
               "--since", change_day)
    assert res.returncode == 0, res.stderr
    late = json.loads((tmp_path / "late" / "history.json").read_text(encoding="utf-8"))
    assert len(late["shows"]) == 6
    assert all(n["region"] != "ID" for n in late["network"])


def test_summaries_outlive_raw_samples(tmp_path: Path) -> None:
    db = tmp_path / "shows.db"
    _store(db, summarize_all=True)
    store = SqliteStore(db)
    try:
        done = store.apply_retention(now=time.time(), raw_days=0.0, keep_days=None)
        assert done["shows_downsampled"] == 12
        summaries, computed = load_summaries(store, None, None, now=time.time())
        assert computed == 0 and len(summaries) == 12
        h = analyse(summaries)
        assert h.network[0].edge_node == "bkk-2"
    finally:
        store.close()


def test_bad_arguments_are_messages(tmp_path: Path) -> None:
    res = _run("--store", str(tmp_path / "x.db"), "--out", str(tmp_path), "--since", "yesterday")
    assert res.returncode == 2 and "not a date" in res.stderr
    res = _run("--store", str(tmp_path / "x.db"), "--out", str(tmp_path),
               "--zone", "TH=Mars/Olympus")
    assert res.returncode == 2 and "unknown time zone" in res.stderr
    res = _run("--store", str(tmp_path / "x.db"), "--out", str(tmp_path),
               "--since", "2026-10-01", "--until", "2026-09-01")
    assert res.returncode == 2 and "--since must be before --until" in res.stderr
    assert "Traceback" not in res.stderr


def test_chinese_page_and_every_text_translated(tmp_path: Path) -> None:
    template = (ROOT / "qosmon/history/templates/history.html.j2").read_text(encoding="utf-8")
    texts = set(re.findall(r't\("([^"]+)"\)', template))
    assert len(texts) > 30
    assert sorted(texts - set(ZH)) == []
    # Texts the page picks from data: kinds of stock trouble, verdicts, causes.
    picked = {*KIND_TEXT.values(), "better", "worse", "no clear change",
              "too few shows to tell", *(label for label, _ in CAUSE_TEXT.values()), *WEEKDAYS}
    assert sorted(picked - set(ZH)) == []
    db = tmp_path / "shows.db"
    _store(db, summarize_all=True)
    res = _run("--store", f"sqlite:///{db}", "--out", str(tmp_path / "zh"), "--lang", "zh")
    assert res.returncode == 0, res.stderr
    html = (tmp_path / "zh" / "history.html").read_text(encoding="utf-8")
    assert '<html lang="zh-Hans">' in html
    assert "直播历史" in html and "周五 18:00-21:00" in html and "丢包" in html


async def test_collector_serves_history(tmp_path: Path) -> None:
    from aiohttp import ClientSession

    from qosmon.collector.app import CollectorConfig, start_collector

    db = tmp_path / "shows.db"
    _store(db, summarize_all=True)
    store = SqliteStore(db)
    collector = await start_collector(CollectorConfig(port=0), store)
    try:
        async with ClientSession(base_url=collector.url) as http:
            async with http.get("/api/v1/history", params={"since": "2026-09-22"}) as r:
                assert r.status == 200
                data = await r.json()
            assert len(data["shows"]) == 6
            assert data["network"][0]["edge_node"] == "bkk-2"
            async with http.get("/history", params={"lang": "zh"}) as r:
                assert r.status == 200 and r.content_type == "text/html"
                html = await r.text()
            assert "直播历史" in html and 'href="/shows/w0-fri"' in html
            for params, field in (({"since": "soon"}, "since"), ({"lang": "fr"}, "lang"),
                                  ({"since": "2026-10-01", "until": "2026-09-01"}, "since")):
                async with http.get("/history", params=params) as r:
                    assert r.status == 400
                    assert (await r.json())["field"] == field
    finally:
        await collector.stop()
        store.close()


async def test_collector_retention_summarizes_ended_shows_first(tmp_path: Path) -> None:
    import asyncio

    from qosmon.collector.app import CollectorConfig, start_collector
    from qosmon.collector.config import Retention

    db = tmp_path / "shows.db"
    store = SqliteStore(db)
    for data in pattern_shows()[:3]:
        store.put_show(data.show)
        store.write_probe_batch(f"batch-{data.show.show_id}", data.probe_samples)
        store.put_incidents(data.show.show_id, data.incidents)
    assert store.show_summaries() == []
    cfg = CollectorConfig(port=0, retention=Retention(raw_days=0.001, check_interval_s=0.2))
    collector = await start_collector(cfg, store)
    try:
        for _ in range(100):
            if len(store.show_summaries()) == 3 and store.count_probe_samples() == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await collector.stop()
    summaries = store.show_summaries()
    store.close()
    # Summarized from the raw samples before retention replaced them.
    assert [s.show_id for s in summaries] == ["w0-tue", "w0-fri", "w1-tue"]
    # TH's three broken minutes of ten: 15 % of the watch time frozen
    # (smoothness 0), 30 % of seconds over the loss limit (network 0.7):
    # 100 x (0.25 x 0.7 + 0.15 + 0.15) = 47.5.
    assert summaries[1].regions[0].region == "TH" and summaries[1].regions[0].score == 47.5
    assert summaries[0].regions[0].score == 100.0


def test_report_and_history_show_the_same_score() -> None:
    from qosmon.report.render import render_report
    from qosmon.report.sections import build_sections

    data = pattern_shows()[1]  # w0-fri: TH and ID both broken for a while
    views = build_sections(data, only=["regions"])
    assert views.regions is not None
    in_report = {r.name: r.score.score for r in views.regions.regions}
    in_history = {r.region: r.score for r in summarize_show(data, now=2e9).regions}
    assert in_report == in_history
    assert in_report["TH"] is not None and in_report["TH"] < 100
    page = render_report(data)
    assert f"experience <b>{in_report['TH']:.0f}</b>/100" in page
