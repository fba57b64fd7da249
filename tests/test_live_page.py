"""The live show pages of a running collector: the list of shows, a show's
page with its open incidents first, the event stream that keeps it current,
and who may look (read tokens, the login form's cookie, loopback)."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qosmon.collector.app import RunningCollector, start_collector
from qosmon.collector.config import CollectorConfig
from qosmon.live import LivePipeline
from qosmon.model import (
    Cause,
    OnScreen,
    ProbeBatch,
    ProbeSample,
    Show,
    Sku,
    StockRecord,
)
from qosmon.store import open_store
from tests import collector_process
from tests.collector_process import PROBES

READ = "read-token-0123456789abcdef"
FEED = "feed-token-0123456789abcdef"


def sample(probe: str, ts: float, broken: bool, show_id: str = "lp-1") -> ProbeSample:
    """A second of a probe; broken: its edge node stopped serving 4 s before."""
    return collector_process.sample(show_id, probe, ts, ts - 4.0 if broken else None)


@dataclass
class Live:
    collector: RunningCollector
    pipeline: LivePipeline
    tokens: dict[str, str]
    start: float

    @property
    def url(self) -> str:
        return self.collector.url


async def start_live(tmp_path: Path, **config: Any) -> tuple[Live, Any]:
    tokens = {p: secrets.token_urlsafe(16) for p in PROBES}
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    pipeline = LivePipeline(store)
    await pipeline.start()
    collector = await start_collector(CollectorConfig.model_validate({
        "port": 0, "probes": [{"probe_id": p, "token": t} for p, t in tokens.items()],
        "feed_tokens": [FEED], **config}), store, pipeline)

    async def stop() -> None:
        await collector.stop()
        await pipeline.close()
        store.close()

    return Live(collector, pipeline, tokens, time.time() - 40), stop


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    running, stop = await start_live(tmp_path)
    try:
        yield running
    finally:
        await stop()


async def feed(live: Live, http: aiohttp.ClientSession, broken_from_s: float | None) -> None:
    """A show that started 40 s ago with a SKU on screen and two warehouses
    (one silent for a minute); its 40 s of samples arrive at once, ID's edge
    node broken from ``broken_from_s``."""
    auth = {"Authorization": f"Bearer {FEED}"}
    show = Show(show_id="lp-1", title="Autumn <gadgets>", start_ts=live.start,
                regions=["ID", "TH"], skus=[Sku(sku="SKU-LAMP", name="Desk lamp")],
                region_warehouses={"ID": ["WH-ID"], "TH": ["WH-TH"]})
    async with http.put("/api/v1/shows/lp-1", json=show.model_dump(mode="json"),
                        headers=auth) as r:
        assert r.status == 200, await r.text()
    on = OnScreen(ts=live.start, show_id="lp-1", sku="SKU-LAMP", on=True)
    async with http.post("/api/v1/shows/lp-1/on-screen", json=[on.model_dump(mode="json")],
                         headers=auth) as r:
        assert r.status == 200
    now = time.time()
    recs = [StockRecord(ts=now, source_ts=now - 1, warehouse="WH-ID", sku="SKU-LAMP",
                        on_hand=250),
            StockRecord(ts=now, source_ts=now - 70, warehouse="WH-TH", sku="SKU-LAMP",
                        on_hand=40)]
    async with http.post("/api/v1/inventory/changes",
                         json={"records": [r.model_dump(mode="json") for r in recs]},
                         headers=auth) as r:
        assert r.status == 200, await r.text()
    for probe in PROBES:
        samples = [sample(probe, live.start + k, broken=probe.startswith("id")
                          and broken_from_s is not None and k >= broken_from_s)
                   for k in range(40)]
        batch = ProbeBatch(batch_id=f"{probe}-0001", probe_id=probe, sent_ts=now,
                           samples=samples)
        async with http.post("/api/v1/samples", data=batch.model_dump_json(),
                             headers={"Authorization": f"Bearer {live.tokens[probe]}",
                                      "Content-Type": "application/json"}) as r:
            assert r.status == 200, await r.text()


async def until(cond: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


def open_node_failure(live: Live) -> bool:
    return any(i.end_ts is None and i.cause == Cause.NODE_FAILURE
               for i in live.pipeline.incidents("lp-1"))


@pytest.mark.timeout(60)
async def test_the_live_page_shows_open_incidents_first(live: Live) -> None:
    async with aiohttp.ClientSession(base_url=live.url) as http:
        await feed(live, http, broken_from_s=20)
        await until(lambda: open_node_failure(live))
        await until(lambda: any(s.level == "stale" for s in live.pipeline.current_stock("lp-1")))
        async with http.get("/shows/lp-1") as r:
            assert r.status == 200
            assert r.content_type == "text/html"
            csp = r.headers["Content-Security-Policy"]
            page = await r.text()
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "default-src 'none'" in csp
    # Open incidents come first, before the fleet, the stock and the report's sections.
    open_at = page.index('id="open"')
    assert open_at < page.index('id="fleet"') < page.index('id="on-screen"')
    assert page.index('id="on-screen"') < page.index('id="timeline"')
    block = page[open_at:page.index('id="fleet"')]
    # The node failure in ID and the warehouse gone stale.
    assert "Open incidents (2)" in block
    assert "node failure" in block and "<b>ID</b>" in block and "Evidence" in block
    assert "stale inventory" in block and "WH-TH" in block
    assert "so far" in block
    assert "Autumn &lt;gadgets&gt;" in page  # escaped
    assert "Probes: 2 of 4 up" in page or "Probes: 4 of 4 up" in page
    stock = page[page.index('id="on-screen"'):page.index('id="timeline"')]
    assert "Stale warehouses" in stock and "WH-TH" in stock
    assert "SKU-LAMP" in stock and "Desk lamp" in stock
    assert '<script src="/shows/-/live.js' in page


@pytest.mark.timeout(60)
async def test_the_event_stream_sends_the_page_and_ends_with_the_show(live: Live) -> None:
    async with aiohttp.ClientSession(base_url=live.url) as http:
        await feed(live, http, broken_from_s=None)
        async with http.get("/shows/lp-1/events") as r:
            assert r.status == 200 and r.content_type == "text/event-stream"
            first = await r.content.readuntil(b"\n\n")
            assert first.startswith(b"event: view\ndata: ")
            assert b"Open incidents (0)" in first
            async with http.post("/api/v1/shows/lp-1/end", json={"ts": time.time()},
                                 headers={"Authorization": f"Bearer {FEED}"}) as end:
                assert end.status == 200
            rest = await asyncio.wait_for(r.content.read(), 20)
        assert b"event: ended\n" in rest and b"show over" in rest
        async with http.get("/shows/") as r:
            listing = await r.text()
        assert "Autumn &lt;gadgets&gt;" in listing and "over" in listing
        async with http.get("/shows/nope") as r:
            assert r.status == 404
        async with http.get("/shows/-/live.js") as r:
            assert r.status == 200 and r.content_type == "text/javascript"
            assert "EventSource" in await r.text()


@pytest.mark.timeout(60)
async def test_pages_need_a_read_token_unless_on_loopback_if_so_configured(
    tmp_path: Path,
) -> None:
    live, stop = await start_live(tmp_path / "a", read_tokens=[READ])
    try:
        # As a browser does, keep cookies of an IP address host.
        async with aiohttp.ClientSession(base_url=live.url,
                                         cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await feed(live, http, broken_from_s=None)
            async with http.get("/shows/lp-1") as r:
                assert r.status == 401
                assert 'action="/shows/-/login?lang=en"' in await r.text()
            async with http.get("/shows/lp-1/events") as r:
                assert r.status == 401
            async with http.get("/shows/lp-1",
                                headers={"Authorization": f"Bearer {READ}"}) as r:
                assert r.status == 200
            async with http.post("/shows/-/login",
                                 data={"token": "wrong-token-0123456789", "next": "/shows/lp-1"},
                                 allow_redirects=False) as r:
                assert r.status == 401 and "not a read token" in await r.text()
            async with http.post("/shows/-/login",
                                 data={"token": READ, "next": "https://evil.example/"},
                                 allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Location"] == "/shows/"
                cookie = r.headers["Set-Cookie"]
                assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
                assert "Path=/shows" in cookie
            async with http.get("/shows/lp-1") as r:  # the cookie now
                assert r.status == 200
    finally:
        await stop()
    live, stop = await start_live(tmp_path / "b", read_tokens=[READ],
                                  pages_open_on_loopback=True)
    try:
        async with aiohttp.ClientSession(base_url=live.url) as http:
            await feed(live, http, broken_from_s=None)
            async with http.get("/shows/lp-1") as r:
                assert r.status == 200
            async with http.get("/api/v1/shows") as r:  # the API is not a page
                assert r.status == 401
    finally:
        await stop()


def _own_texts(html: str) -> list[str]:
    """The page's own words: headings (the title, h1, is the data's), table
    heads, facts, the nav."""
    out = []
    for tag in ("h2", "h3", "th", "dt", "nav"):
        for m in re.finditer(rf"<{tag}\b[^>]*>(.*?)</{tag}>", html, re.S):
            out.append(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(1))).strip())
    return out


@pytest.mark.timeout(60)
async def test_the_live_page_in_chinese(tmp_path: Path) -> None:
    live, stop = await start_live(tmp_path)
    try:
        async with aiohttp.ClientSession(base_url=live.url) as http:
            await feed(live, http, broken_from_s=20)
            await until(lambda: open_node_failure(live))
            async with http.get("/shows/lp-1", params={"lang": "zh"}) as r:
                assert r.status == 200
                page = await r.text()
            async with http.get("/shows/lp-1/events", params={"lang": "zh"}) as r:
                assert r.status == 200
                first = (await r.content.readuntil(b"\n\n")).decode()
            async with http.get("/shows/", params={"lang": "zh"}) as r:
                listing = await r.text()
            for path in ("/shows/lp-1", "/shows/", "/shows/lp-1/events"):
                async with http.get(path, params={"lang": "fr"}) as r:
                    assert r.status == 400, path
                    assert "lang" in await r.text()
            async with http.get("/shows/lp-1") as r:
                english = await r.text()
    finally:
        await stop()
    assert '<html lang="zh-Hans">' in page
    headings = _own_texts(page)
    assert re.search(r"进行中的故障（\d+）", page)
    assert "在屏商品库存" in headings and "数据过期的仓库" in page
    assert any(re.fullmatch(r"探针：4 个中 \d 个正常", h) for h in headings), headings
    # The report's sections under the live blocks, in Chinese too.
    for heading in ("时间线", "地区", "故障事件", "各地区结论"):
        assert heading in page, heading
    assert "节点故障" in page and "证据" in page and "开播后" in page
    # Words of the page's own (data such as "jkt-1" is numbered).
    leftovers = {w for s in headings for w in re.findall(r"\b[a-z]{3,}\b(?!-)", s)}
    assert leftovers == set(), leftovers
    for word in ("Open incidents", "Stock on screen", "Probes:", "into the show", "so far"):
        assert word not in page, word
    # The page keeps its language: its event stream and its links.
    assert 'data-events="/shows/lp-1/events?lang=zh"' in page
    assert "进行中的故障" in first and "Open incidents" not in first
    assert '<html lang="zh-Hans">' in listing and "/shows/lp-1?lang=zh" in listing
    assert "直播中" in listing
    # Without ?lang= the page is in the configured language (English here).
    assert '<html lang="en">' in english and "Open incidents (" in english


@pytest.mark.timeout(60)
async def test_the_configured_language_is_the_pages_default(tmp_path: Path) -> None:
    live, stop = await start_live(tmp_path, live={"report_language": "zh"},
                                  read_tokens=[READ])
    try:
        async with aiohttp.ClientSession(base_url=live.url) as http:
            async with http.get("/shows/") as r:
                assert r.status == 401  # the login form, in the page's language
                login = await r.text()
            async with http.post("/shows/-/login?lang=zh",
                                 data={"token": "wrong", "next": "/shows/?lang=zh"}) as r:
                refused = await r.text()
            async with http.get("/shows/", params={"lang": "en"},
                                headers={"Authorization": f"Bearer {READ}"}) as r:
                en = await r.text()
    finally:
        await stop()
    assert '<html lang="zh-Hans">' in login and "需要读取令牌" in login
    assert "这不是本采集器的读取令牌。" in refused
    assert '<html lang="en">' in en and "No show is known to this collector yet." in en
