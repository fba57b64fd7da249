"""A libwebrtc origin for tests and benchmarks: headless Chromium publishing a
moving canvas picture and a tone, behind a small WHEP endpoint.

``POST /whep/{codec}`` (``vp8`` or ``h264``; for H.264 optionally
``?profile=4d001f&mode=0``; ``max_kbps=N`` caps the video encoder) needs
``Authorization: Bearer <token>`` (401 without, 403 with a wrong one, 404
for another codec or path, 415 for a body that is not ``application/sdp``).
The offer goes to the page (``tests/data/libwebrtc_origin.html``) over
DevTools; the page makes a new
RTCPeerConnection for it and returns the answer, served as 201 with a
``Location`` to ``DELETE``. So a probe meets a real sender: libwebrtc's
congestion control, RTX, FEC and keyframe answers. The 201 says
``Accept-Patch: application/trickle-ice-sdpfrag`` (``?restart=0``: it does
not), and a ``PATCH`` of the Location with the viewer's new ICE credentials
and candidates restarts ICE on the sender's connection, answering with the
sender's new ones (the viewer side of WHIP's ICE restart).

Everything listens on 127.0.0.1 only (or on the ``hosts`` given, e.g. the
root end of a test namespace's veth); the page hands out ICE candidates of
those addresses only, and Chromium runs with the flags that let it use
loopback. ``GET /viewer`` is a page that watches a WHEP URL as a browser
viewer does (``tests/data/browser_viewer.html``), for a reference Chromium.
Use as ``async with LibwebrtcOrigin(token) as origin: origin.url("h264")``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.chromium import WEBRTC_LOOPBACK_FLAGS, chromium, chromium_path, evaluate, open_page

PAGE = Path(__file__).parent / "data" / "libwebrtc_origin.html"
VIEWER_PAGE = Path(__file__).parent / "data" / "browser_viewer.html"
CODECS = ("vp8", "h264")
SDPFRAG = "application/trickle-ice-sdpfrag"


class LibwebrtcOrigin:
    def __init__(self, token: str, binary: str | None = None,
                 hosts: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.token = token
        self.binary = binary or chromium_path()
        self.hosts = hosts
        self.bases: dict[str, str] = {}
        self.base = ""
        self.deleted: list[str] = []
        self.answered: list[str] = []  # WHEP resource ids, in order
        self.restarted: list[str] = []  # resource ids, once per ICE restart done
        self._stack = contextlib.AsyncExitStack()
        self._runner: web.AppRunner | None = None
        self._cdp: Any = None
        self._session = ""

    def url(self, codec: str = "h264", host: str | None = None, **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        base = self.bases[host] if host else self.base
        return f"{base}/whep/{codec}" + (f"?{q}" if q else "")

    async def __aenter__(self) -> LibwebrtcOrigin:
        if self.binary is None:
            raise RuntimeError("no Chromium installed")
        try:
            app = web.Application(client_max_size=256 * 1024)
            app.router.add_get("/", self._page)
            app.router.add_get("/viewer", self._viewer_page)
            app.router.add_post("/whep/{codec}", self._post)
            app.router.add_delete("/whep/resource/{rid}", self._delete)
            app.router.add_patch("/whep/resource/{rid}", self._patch)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            # The publishing page is always loaded over loopback.
            for host in dict.fromkeys(("127.0.0.1", *self.hosts)):
                site = web.TCPSite(self._runner, host, 0)
                await site.start()
                self.bases[host] = f"http://{host}:{self._runner.addresses[-1][1]}"
            self.base = self.bases[self.hosts[0]]
            self._cdp = await self._stack.enter_async_context(
                chromium(self.binary, extra_flags=WEBRTC_LOOPBACK_FLAGS))
            # With camera/microphone permission (never used) Chromium gathers
            # ICE candidates on every interface, not only the default route's.
            await self._cdp.call("Browser.grantPermissions", {
                "permissions": ["videoCapture", "audioCapture"],
                "origin": self.bases["127.0.0.1"]})
            self._session = await open_page(self._cdp, self.bases["127.0.0.1"] + "/")
            # The picture must be moving before the first viewer comes.
            await evaluate(self._cdp, self._session,
                           "new Promise(r => setTimeout(() => r(n), 300))")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        return await evaluate(self._cdp, self._session, expression, timeout)

    async def sender_stats(self) -> list[dict[str, Any]]:
        """The page's outbound-rtp stats for every viewer it serves."""
        stats: list[dict[str, Any]] = await self.evaluate("senderStats()")
        return stats

    # -- HTTP ----------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(), content_type="text/html")

    async def _viewer_page(self, request: web.Request) -> web.Response:
        return web.Response(text=VIEWER_PAGE.read_text(), content_type="text/html")

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise web.HTTPUnauthorized(text="Bearer token required",
                                       headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(header[7:].encode(), self.token.encode()):
            raise web.HTTPForbidden(text="token not valid for this endpoint")

    async def _post(self, request: web.Request) -> web.Response:
        self._authorize(request)
        codec = request.match_info["codec"]
        if codec not in CODECS:
            raise web.HTTPNotFound(text=f"no stream {codec}")
        if request.content_type != "application/sdp":
            raise web.HTTPUnsupportedMediaType(text="send application/sdp")
        offer = await request.text()
        profile = request.query.get("profile", "")
        mode = request.query.get("mode")
        try:
            max_kbps = int(request.query.get("max_kbps", "0"))
        except ValueError:
            raise web.HTTPBadRequest(text="max_kbps: a whole number") from None
        args = ", ".join([*(_js(v) for v in (offer, codec, profile, mode)),
                          json.dumps(list(self.hosts)), str(max_kbps)])
        try:
            answer = await self.evaluate(f"answer({args})")
        except RuntimeError as exc:
            raise web.HTTPBadRequest(text=f"offer refused: {exc}") from None
        self.answered.append(answer["id"])
        headers = {"Location": f"/whep/resource/{answer['id']}"}
        if request.query.get("restart") != "0":
            headers["Accept-Patch"] = SDPFRAG
        return web.Response(status=201, text=answer["sdp"], content_type="application/sdp",
                            headers=headers)

    async def _patch(self, request: web.Request) -> web.Response:
        """An ICE restart: only ``If-Match: *`` with new credentials is taken
        (trickling more candidates into a running session is not offered)."""
        self._authorize(request)
        rid = request.match_info["rid"]
        if request.content_type != SDPFRAG:
            raise web.HTTPUnsupportedMediaType(text=f"send {SDPFRAG}")
        if request.headers.get("If-Match") != "*":
            raise web.HTTPPreconditionFailed(text="only ICE restarts (If-Match: *)")
        fragment = await request.text()
        ufrag = re.search(r"^a=ice-ufrag:(\S+)", fragment, re.M)
        pwd = re.search(r"^a=ice-pwd:(\S+)", fragment, re.M)
        if ufrag is None or pwd is None:
            raise web.HTTPBadRequest(text="no a=ice-ufrag / a=ice-pwd")
        candidates = re.findall(r"^a=candidate:(.+?)\r?$", fragment, re.M)
        args = ", ".join([_js(rid), _js(ufrag[1]), _js(pwd[1]), json.dumps(candidates),
                          json.dumps(list(self.hosts))])
        try:
            ice = await self.evaluate(f"restart({args})")
        except RuntimeError as exc:
            raise web.HTTPBadRequest(text=f"restart refused: {exc}") from None
        if ice is None:
            raise web.HTTPNotFound()
        self.restarted.append(rid)
        mid = re.search(r"^a=mid:(\S+)", fragment, re.M)
        body = [f"a=ice-ufrag:{ice['ufrag']}", f"a=ice-pwd:{ice['pwd']}",
                "m=audio 9 RTP/AVP 0", f"a=mid:{mid[1] if mid else '0'}",
                *(f"a=candidate:{c}" for c in ice["candidates"]), "a=end-of-candidates"]
        etag = f'"{rid}-{len(self.restarted)}"'
        return web.Response(status=200, text="\r\n".join(body) + "\r\n",
                            content_type=SDPFRAG, headers={"ETag": etag})

    async def _delete(self, request: web.Request) -> web.Response:
        self._authorize(request)
        rid = request.match_info["rid"]
        if not await self.evaluate(f"hangup({_js(rid)})"):
            raise web.HTTPNotFound()
        self.deleted.append(rid)
        return web.Response(status=200)


def _js(value: str | None) -> str:
    """A JavaScript literal for ``value`` (JSON is valid JavaScript)."""
    return json.dumps(value)
