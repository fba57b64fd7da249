"""The live page in a real browser during a real demo show: headless
Chromium opens it before the fault, and the open incident appears on it by
itself soon after diagnosis finds it, with no console error and no request
outside the collector's origin; desktop and phone screenshots are kept."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from qosmon.demo.scenario import load_scenario
from qosmon.demo.show import DemoShow
from qosmon.model import Cause
from tests.chromium import Viewport, chromium, chromium_path

SCENARIO = Path(__file__).parent / "scenarios" / "live-page.toml"
BINARY = chromium_path()
DESKTOP = Viewport("desktop", 1280, 900)
PHONE = Viewport("phone", 390, 844, mobile=True, scale=2.0)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BINARY is None,
                       reason="headless Chromium not installed (Debian package 'chromium')"),
]

# The open incidents as the page shows them, read from the DOM.
OPEN_INCIDENTS_JS = """JSON.stringify(Array.from(
  document.querySelectorAll('#open article.incident h3')).map(e => e.textContent))"""


async def _open(cdp: Any, url: str, vp: Viewport) -> tuple[str, str, int]:
    target = await cdp.call("Target.createTarget", {"url": "about:blank"})
    attached = await cdp.call("Target.attachToTarget",
                              {"targetId": target["targetId"], "flatten": True})
    s = attached["sessionId"]
    for domain in ("Network", "Runtime", "Log", "Page"):
        await cdp.call(f"{domain}.enable", session=s)
    await cdp.call("Emulation.setDeviceMetricsOverride", {
        "width": vp.width, "height": vp.height, "deviceScaleFactor": vp.scale,
        "mobile": vp.mobile}, session=s)
    start = len(cdp.events)
    await cdp.call("Page.navigate", {"url": url}, session=s)
    await cdp.wait_event("Page.loadEventFired", s, start, 30)
    return target["targetId"], s, start


async def _open_incidents(cdp: Any, s: str) -> list[str]:
    res = await cdp.call("Runtime.evaluate", {"expression": OPEN_INCIDENTS_JS,
                                              "returnByValue": True}, session=s)
    return list(json.loads(res.get("result", {}).get("value") or "[]"))


async def _screenshot(cdp: Any, s: str, vp: Viewport, path: Path) -> None:
    """What the screen shows first (``<name>-top.png``), then the whole page."""
    top = await cdp.call("Page.captureScreenshot", {"format": "png"}, session=s, timeout=60)
    path.with_name(path.stem + "-top.png").write_bytes(base64.b64decode(top["data"]))
    metrics = await cdp.call("Page.getLayoutMetrics", session=s)
    height = int(min(metrics["cssContentSize"]["height"], 30000))
    await cdp.call("Emulation.setDeviceMetricsOverride", {
        "width": vp.width, "height": max(height, vp.height), "deviceScaleFactor": vp.scale,
        "mobile": vp.mobile}, session=s)
    shot = await cdp.call("Page.captureScreenshot",
                          {"format": "png", "captureBeyondViewport": True}, session=s,
                          timeout=60)
    path.write_bytes(base64.b64decode(shot["data"]))
    await cdp.call("Emulation.setDeviceMetricsOverride", {
        "width": vp.width, "height": vp.height, "deviceScaleFactor": vp.scale,
        "mobile": vp.mobile}, session=s)


def _problems(events: list[dict[str, Any]], sessions: set[str]) -> tuple[list[str], list[str]]:
    requests, errors = [], []
    for ev in events:
        if ev.get("sessionId") not in sessions:
            continue
        method, params = ev.get("method"), ev.get("params", {})
        if method == "Network.requestWillBeSent":
            requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(details.get("exception", {}).get("description")
                          or details.get("text", ""))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                   for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            errors.append(params["entry"].get("text", ""))
    return requests, errors


@pytest.mark.timeout(300)
async def test_live_page_shows_the_open_incident_during_the_demo(tmp_path: Path) -> None:
    assert BINARY is not None
    lines: list[str] = []
    url_known = asyncio.Event()

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("live page"):
            url_known.set()

    show = asyncio.create_task(DemoShow(load_scenario(SCENARIO), tmp_path / "demo",
                                        echo=echo).run())
    try:
        await asyncio.wait_for(url_known.wait(), 120)
        url = next(line for line in lines if line.startswith("live page")).split()[-1]
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        seen_at = None
        shots = {}
        # Nothing resolves but the collector's own address.
        async with chromium(BINARY, allow_hosts=(urlsplit(url).hostname or "",)) as cdp:
            # Opened before the fault: the incident must arrive by itself.
            desk_target, desk, _ = await _open(cdp, url, DESKTOP)
            assert await _open_incidents(cdp, desk) == []
            titles: list[str] = []
            while not show.done():
                titles = await _open_incidents(cdp, desk)
                if any("node failure" in t and "DE" in t for t in titles):
                    seen_at = time.time()
                    break
                await asyncio.sleep(0.25)
            if seen_at is None:
                status = await cdp.call("Runtime.evaluate", {
                    "expression": "location.href + ' | ' + document.body.innerText.slice(0, 400)",
                    "returnByValue": True}, session=desk)
                result = await show
                pytest.fail(f"the page never showed the node failure in DE: it showed {titles}, "
                            f"status {status}; errors {_problems(cdp.events, {desk})[1]}; "
                            f"incidents {[(i.cause, i.scope) for i in result.incidents]}")
            shots["desktop"] = tmp_path / "live-desktop.png"
            await _screenshot(cdp, desk, DESKTOP, shots["desktop"])
            phone_target, phone, _ = await _open(cdp, url, PHONE)
            await asyncio.sleep(0.5)
            phone_titles = await _open_incidents(cdp, phone)
            shots["phone"] = tmp_path / "live-phone.png"
            await _screenshot(cdp, phone, PHONE, shots["phone"])
            # The probes and the stock on screen, as a phone shows them.
            await cdp.call("Runtime.evaluate", {
                "expression": "document.getElementById('fleet').scrollIntoView()"}, session=phone)
            fleet = await cdp.call("Page.captureScreenshot", {"format": "png"}, session=phone)
            (tmp_path / "live-phone-fleet.png").write_bytes(base64.b64decode(fleet["data"]))
            widths = await cdp.call("Runtime.evaluate", {
                "expression": "document.documentElement.scrollWidth", "returnByValue": True},
                session=phone)
            requests, errors = _problems(cdp.events, {desk, phone})
            for target in (desk_target, phone_target):
                await cdp.call("Target.closeTarget", {"targetId": target})
        result = await asyncio.wait_for(show, 200)
    finally:
        if not show.done():
            show.cancel()
    keep = os.environ.get("QOSMON_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for path in [*shots.values(), tmp_path / "live-phone-fleet.png"]:
            for shot in (path, path.with_name(path.stem + "-top.png")):
                if shot.exists():
                    shutil.copy(shot, Path(keep) / shot.name)

    found = [i for i in result.incidents
             if i.cause == Cause.NODE_FAILURE and i.scope.get("region") == "DE"]
    assert found, [(i.cause, i.scope) for i in result.incidents]
    detected = min(i.detected_ts or i.start_ts for i in found)
    assert seen_at - detected <= 10.0, f"shown {seen_at - detected:.1f} s after detection"
    assert any("node failure" in t and "DE" in t for t in phone_titles)
    assert widths["result"]["value"] <= PHONE.width + 1  # no sideways scrolling on a phone
    outside = [u for u in requests if not u.startswith(origin + "/") and not u.startswith("data:")]
    assert outside == []
    assert any(u.startswith(origin + "/shows/-/live.js") for u in requests)
    assert errors == []
    # The alert on-call got while the show ran links to this very page.
    links = {a.get("url") for e in result.alerts if e["route"] == "oncall"
             for a in e["payload"]["alerts"] if a.get("status") == "firing"}
    assert url in links, links
