"""Headless Chromium (Debian package) driven over the DevTools protocol, for
tests that need to see what a browser does with a page.

Starts a fresh Chromium with its own profile, DevTools on 127.0.0.1 only and
every host name resolving to nothing, opens one URL per viewport, and records
every network request, script exception and console error while it loads.
Always stopped (terminate, then kill) whatever happens.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    # Nothing can leave the machine even if the page tried: no name resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


def chromium_path() -> str | None:
    """The Chromium binary, or None when it is not installed."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


@dataclass
class Viewport:
    name: str
    width: int
    height: int
    mobile: bool = False
    scale: float = 1.0


@dataclass
class PageReport:
    url: str
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    exceptions: list[str] = field(default_factory=list)  # uncaught script errors
    console_errors: list[str] = field(default_factory=list)  # console/log errors
    screenshots: dict[str, Path] = field(default_factory=dict)
    evaluated: dict[str, Any] = field(default_factory=dict)
    pdf: Path | None = None


class _Cdp:
    """A minimal DevTools client: commands by id, events kept in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.event_seen = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.json()
            if "id" in data:
                fut = self.pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
            else:
                self.events.append(data)
                self.event_seen.set()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("DevTools connection closed"))

    async def call(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        msg_id = next(self.ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = fut
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send_json(msg)
        reply = await asyncio.wait_for(fut, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def wait_event(self, method: str, session: str, start: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if any(e.get("method") == method and e.get("sessionId") == session
                   for e in self.events[start:]):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.event_seen.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event_seen.wait(), left)

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader


# Carries the DevTools connection out of a network namespace: listens on a
# Unix socket (the file system is shared across namespaces) and forwards each
# connection to Chromium's DevTools port on the namespace's own loopback.
_DEVTOOLS_RELAY = """
import asyncio, sys
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    finally:
        w.close()
async def handle(r, w):
    tr, tw = await asyncio.open_connection("127.0.0.1", int(sys.argv[2]))
    await asyncio.gather(pipe(r, tw), pipe(tr, w), return_exceptions=True)
async def main():
    server = await asyncio.start_unix_server(handle, sys.argv[1])
    await server.serve_forever()
asyncio.run(main())
"""


async def _stop_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)


@contextlib.asynccontextmanager
async def chromium(binary: str, timeout: float = 30.0,
                   extra_flags: list[str] | None = None,
                   netns: str | None = None,
                   allow_hosts: tuple[str, ...] = ()) -> AsyncIterator[_Cdp]:
    """A running headless Chromium with a fresh profile, and a DevTools client.
    With ``netns``, Chromium runs in that network namespace (root needed).
    ``allow_hosts`` (e.g. a local server's "127.0.0.1") are still reachable."""
    profile = Path(tempfile.mkdtemp(prefix="qosmon-chromium-"))
    prefix = ["ip", "netns", "exec", netns] if netns else []
    flags = list(FLAGS)
    if allow_hosts:
        rules = ", ".join(["MAP * ~NOTFOUND", *(f"EXCLUDE {h}" for h in allow_hosts)])
        flags = [f"--host-resolver-rules={rules}" if f.startswith("--host-resolver-rules")
                 else f for f in flags]
    args = [*prefix, binary, *flags, *(extra_flags or []), f"--user-data-dir={profile}"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run as root otherwise
    log = open(profile / "chromium.log", "wb")  # noqa: SIM115 - closed in finally
    proc = await asyncio.create_subprocess_exec(
        *args, "about:blank", stdout=log, stderr=log, start_new_session=True
    )
    session: aiohttp.ClientSession | None = None
    cdp: _Cdp | None = None
    relay: asyncio.subprocess.Process | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Chromium did not start: {(profile / 'chromium.log').read_text()[-2000:]}"
                )
            await asyncio.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        if netns:
            sock = profile / "devtools.sock"
            relay = await asyncio.create_subprocess_exec(
                *prefix, sys.executable, "-c", _DEVTOOLS_RELAY, str(sock), port,
                start_new_session=True)
            while not sock.exists():
                if relay.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("DevTools relay did not start")
                await asyncio.sleep(0.05)
            session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock)))
        else:
            session = aiohttp.ClientSession()
        ws = await session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0,
                                      timeout=aiohttp.ClientWSTimeout(ws_close=5))
        cdp = _Cdp(ws)
        yield cdp
    finally:
        if cdp is not None:
            await cdp.close()
        if session is not None:
            await session.close()
        if relay is not None:
            await _stop_group(relay)
        await _stop_group(proc)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


async def inspect_page(
    binary: str,
    url: str,
    out_dir: Path,
    viewports: list[Viewport],
    evaluate: dict[str, str] | None = None,
    pdf: bool = False,
    timeout: float = 60.0,
) -> PageReport:
    """Load ``url`` once per viewport; full-page screenshot of each into
    ``out_dir``; JS expressions in ``evaluate`` run after the first load."""
    report = PageReport(url=url)
    out_dir.mkdir(parents=True, exist_ok=True)
    async with chromium(binary) as cdp:
        for i, vp in enumerate(viewports):
            target = await cdp.call("Target.createTarget", {"url": "about:blank"})
            attached = await cdp.call(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )
            s = attached["sessionId"]
            for domain in ("Network", "Runtime", "Log", "Page"):
                await cdp.call(f"{domain}.enable", session=s)
            await cdp.call("Emulation.setDeviceMetricsOverride", {
                "width": vp.width, "height": vp.height, "deviceScaleFactor": vp.scale,
                "mobile": vp.mobile,
            }, session=s)
            start = len(cdp.events)
            await cdp.call("Page.navigate", {"url": url}, session=s)
            await cdp.wait_event("Page.loadEventFired", s, start, timeout)
            # Let anything deferred (late requests, timers) show itself.
            await asyncio.sleep(0.5)
            if i == 0:
                for key, expr in (evaluate or {}).items():
                    res = await cdp.call("Runtime.evaluate",
                                         {"expression": expr, "returnByValue": True}, session=s)
                    report.evaluated[key] = res.get("result", {}).get("value")
            metrics = await cdp.call("Page.getLayoutMetrics", session=s)
            height = int(min(metrics["cssContentSize"]["height"], 30000))
            report.evaluated[f"{vp.name}:scroll_width"] = int(
                metrics["cssContentSize"]["width"])
            await cdp.call("Emulation.setDeviceMetricsOverride", {
                "width": vp.width, "height": max(height, vp.height),
                "deviceScaleFactor": vp.scale, "mobile": vp.mobile,
            }, session=s)
            shot = await cdp.call("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True},
                                  session=s, timeout=timeout)
            path = out_dir / f"{vp.name}.png"
            path.write_bytes(base64.b64decode(shot["data"]))
            report.screenshots[vp.name] = path
            if pdf and i == 0:
                printed = await cdp.call("Page.printToPDF", {"printBackground": True},
                                         session=s, timeout=timeout)
                report.pdf = out_dir / "print.pdf"
                report.pdf.write_bytes(base64.b64decode(printed["data"]))
            for ev in cdp.events[start:]:
                if ev.get("sessionId") != s:
                    continue
                method, params = ev.get("method"), ev.get("params", {})
                if method == "Network.requestWillBeSent":
                    report.requests.append(params["request"]["url"])
                elif method == "Runtime.exceptionThrown":
                    details = params.get("exceptionDetails", {})
                    report.exceptions.append(
                        details.get("exception", {}).get("description") or details.get("text", "")
                    )
                elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                    report.console_errors.append(
                        " ".join(str(a.get("value", a.get("description", "")))
                                 for a in params.get("args", []))
                    )
                elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                    report.console_errors.append(params["entry"].get("text", ""))
            await cdp.call("Target.closeTarget", {"targetId": target["targetId"]})
    return report


# A page served on loopback that does WebRTC there: Chromium otherwise offers
# no loopback ICE candidate and hides host addresses behind mDNS names; audio
# must start without a user gesture.
WEBRTC_LOOPBACK_FLAGS = [
    # The page itself is served on 127.0.0.1 (the last rule given wins).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    # A publishing page must not be throttled as a background tab.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


async def open_page(cdp: _Cdp, url: str, timeout: float = 30.0) -> str:
    """Open ``url`` in a new tab; its DevTools session id once loaded."""
    target = await cdp.call("Target.createTarget", {"url": "about:blank"})
    attached = await cdp.call(
        "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
    session: str = attached["sessionId"]
    for domain in ("Runtime", "Page"):
        await cdp.call(f"{domain}.enable", session=session)
    start = len(cdp.events)
    await cdp.call("Page.navigate", {"url": url}, session=session)
    await cdp.wait_event("Page.loadEventFired", session, start, timeout)
    return session


async def evaluate(cdp: _Cdp, session: str, expression: str, timeout: float = 30.0) -> Any:
    """Run ``expression`` in the page (awaiting a promise); its JSON value.
    A script exception is raised as RuntimeError with the page's message."""
    res = await cdp.call("Runtime.evaluate", {
        "expression": expression, "awaitPromise": True, "returnByValue": True,
    }, session=session, timeout=timeout)
    if "exceptionDetails" in res:
        details = res["exceptionDetails"]
        raise RuntimeError(details.get("exception", {}).get("description")
                           or details.get("text", "script error"))
    return res.get("result", {}).get("value")
