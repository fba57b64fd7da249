"""The live show pages: ``GET /shows/`` lists the live and past shows,
``GET /shows/{show_id}`` is a show's live page (``qosmon.report.live``),
kept current by the server-sent events of ``/shows/{show_id}/events``.

Reads like the API's: open when no read token is configured, else a read
(or feed) token, as a Bearer header or, for a browser, the cookie the login
form sets; with ``pages_open_on_loopback`` the machine itself needs none.
The pages' CSP lets them load and connect to their own origin only.

A page is in the language of its ``?lang=`` (``en`` or ``zh``), else of
the config's ``[live] report_language``; its links, login form and event
stream keep that language.

A page is built from the store's data and the pipeline's current view in a
worker thread, once per show however many watch it, and at most every
``page_refresh_s`` (less often when building takes long), so watching never
holds up ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import time
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import quote

from aiohttp import web

from qosmon.collector.auth import bearer_token, token_digest
from qosmon.collector.request import existing_show, path_show_id, state_of
from qosmon.collector.state import CollectorState
from qosmon.collector.wire import ApiError
from qosmon.i18n import LANGUAGES
from qosmon.report.data import load_show_data
from qosmon.report.live import (
    LiveInputs,
    LiveView,
    build_live,
    render_live_body,
    render_live_page,
    render_login,
    render_show_list,
)

routes = web.RouteTableDef()

COOKIE = "qosmon_read"
# Only what the page itself serves: its script, its event stream, the login
# form. Inline styles and SVG data are the report's own.
PAGE_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; "
            "style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
SSE_KEEPALIVE_S = 15.0
MAX_STREAMS = 200  # open event streams per collector
MAX_PAGES_KEPT = 100  # built pages kept for the next viewer
# A page that took t to build is rebuilt at most every BUILD_SHARE_X x t.
BUILD_SHARE_X = 5.0
_SCRIPT = resources.files("qosmon.collector").joinpath("static/live.js").read_bytes()
_SCRIPT_TAG = hashlib.sha256(_SCRIPT).hexdigest()[:16]


@dataclass
class _Built:
    view: LiveView
    body: str
    running: bool
    built_at: float  # monotonic
    took_s: float


@dataclass
class LivePages:
    """The latest built page per show, shared by everyone watching it."""

    built: dict[tuple[str, str], _Built] = field(default_factory=dict)  # (show, lang)
    locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    streams: int = 0


PAGES = web.AppKey("qosmon_live_pages", LivePages)


def _pages(request: web.Request) -> LivePages:
    app = request.app
    if PAGES not in app:
        raise ApiError(500, "live pages are not set up")
    return app[PAGES]


# --- who may look -------------------------------------------------------------------

def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _may_look(request: web.Request) -> bool:
    state = state_of(request)
    if state.tokens.reads_open:
        return True
    if state.config.pages_open_on_loopback and _loopback(request.remote):
        return True
    token = bearer_token(request.headers.get("Authorization")) or request.cookies.get(COOKIE)
    if not token or not state.tokens.may_read(token):
        return False
    wait = state.limiter.acquire(token_digest(token), time.monotonic())
    if wait is not None:
        raise ApiError(429, f"too many requests for this token; retry in {wait:.2f} s",
                       headers={"Retry-After": str(max(1, int(wait) + 1))})
    return True


def _lang(request: web.Request) -> str:
    """The page's language: ``?lang=``, else the collector's configured one."""
    lang = request.query.get("lang")
    if lang is None:
        return state_of(request).config.live.report_language
    if lang not in LANGUAGES:
        raise ApiError(400, f"unknown language {lang[:20]!r}: one of {', '.join(LANGUAGES)}",
                       "lang")
    return lang


def _html(text: str, status: int = 200) -> web.Response:
    resp = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    resp.headers["Content-Security-Policy"] = PAGE_CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _login_page(next_path: str, lang: str, problem: str = "",
                status: int = 401) -> web.Response:
    resp = _html(render_login(next_path, problem, lang), status)
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="qosmon"'
    return resp


def _safe_next(value: str) -> str:
    # Only back to a show page of this collector: never an open redirect.
    return value if value.startswith("/shows/") and "//" not in value else "/shows/"


@routes.post("/shows/-/login")
async def post_login(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    # The bucket of whoever is trying, so guessing tokens is rate-limited.
    wait = state.limiter.acquire(token_digest(f"login:{request.remote}"), time.monotonic())
    if wait is not None:
        raise ApiError(429, f"too many attempts; retry in {wait:.2f} s",
                       headers={"Retry-After": str(max(1, int(wait) + 1))})
    if request.content_type != "application/x-www-form-urlencoded":
        raise ApiError(415, "Content-Type must be application/x-www-form-urlencoded",
                       "Content-Type")
    lang = _lang(request)
    form = await request.post()
    token = form.get("token")
    next_path = _safe_next(str(form.get("next") or "/shows/"))
    if not isinstance(token, str) or not state.tokens.may_read(token):
        return _login_page(next_path, lang, "That is not a read token of this collector.")
    resp = web.Response(status=303, headers={"Location": next_path})
    resp.set_cookie(COOKIE, token, path="/shows", httponly=True, samesite="Strict",
                    secure=request.secure)
    return resp


# --- the pages ----------------------------------------------------------------------

def _report_url(state: CollectorState, show_id: str) -> str | None:
    url = state.config.live.report_url
    return url.replace("{show_id}", quote(show_id, safe="")) if url else None


async def _build(state: CollectorState, pages: LivePages, show_id: str, lang: str) -> _Built:
    """The show's page body in ``lang`` as of now, rebuilt only when the
    last one is older than the refresh period (one build at a time per show
    and language)."""
    key = (show_id, lang)
    lock = pages.locks.setdefault(key, asyncio.Lock())
    async with lock:
        last = pages.built.get(key)
        mono = time.monotonic()
        if last is not None:
            every = max(state.config.page_refresh_s, BUILD_SHARE_X * last.took_s)
            if mono - last.built_at < every or not last.running:
                return last
        t0 = time.perf_counter()
        data = await state.store_call("load_show_data", load_show_data, state.store, show_id)
        pipeline = state.pipeline
        now = time.time()
        running = pipeline.watching(show_id)
        if running:
            data.incidents = pipeline.incidents(show_id)  # this second's view
        live = LiveInputs(
            now=now, running=running, fleet=state.fleet.view(now),
            probes=next((s.probes for s in pipeline.live_qos(now) if s.show_id == show_id), []),
            stock=pipeline.current_stock(show_id), report_url=_report_url(state, show_id),
        )
        view = await asyncio.to_thread(build_live, data, live, lang)
        body = render_live_body(view)
        built = _Built(view=view, body=body, running=running, built_at=time.monotonic(),
                       took_s=time.perf_counter() - t0)
        pages.built[key] = built
        if len(pages.built) > MAX_PAGES_KEPT:
            # Forget the page built longest ago (built again if asked for).
            oldest = min(pages.built, key=lambda k: pages.built[k].built_at)
            del pages.built[oldest]
            if not pages.locks[oldest].locked():
                del pages.locks[oldest]
        return built


@routes.get("/shows")
async def get_show_list_bare(request: web.Request) -> web.Response:
    return web.Response(status=308, headers={"Location": "/shows/"})


@routes.get("/shows/")
async def get_show_list(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    lang = _lang(request)
    if not _may_look(request):
        return _login_page(request.path_qs, lang)
    shows = await state.store_call("list_shows", state.store.list_shows)
    watching = {s.show_id for s in shows if state.pipeline.watching(s.show_id)}
    reports = {s.show_id: url for s in shows if s.show_id not in watching
               and (url := _report_url(state, s.show_id))}
    return _html(render_show_list(shows, watching, time.time(), reports, lang))


@routes.get("/shows/-/live.js")
async def get_live_script(request: web.Request) -> web.Response:
    resp = web.Response(body=_SCRIPT, content_type="text/javascript", charset="utf-8")
    resp.headers["Cache-Control"] = "public, max-age=3600"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@routes.get("/shows/{show_id}")
async def get_live_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    lang = _lang(request)
    if not _may_look(request):
        return _login_page(request.path_qs, lang)
    show_id = path_show_id(request)
    await existing_show(state, show_id)
    built = await _build(state, _pages(request), show_id, lang)
    quoted = quote(show_id, safe="")
    return _html(render_live_page(built.view,
                                  events_url=f"/shows/{quoted}/events?lang={lang}",
                                  script_url=f"/shows/-/live.js?v={_SCRIPT_TAG}"))


@routes.get("/shows/{show_id}/events")
async def get_live_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``view`` with the page body whenever it changed,
    ``ended`` with the last one when the show is over (then the stream ends)."""
    state = state_of(request)
    lang = _lang(request)
    if not _may_look(request):
        raise ApiError(401, "read token needed (Bearer header or the pages' cookie)",
                       headers={"WWW-Authenticate": 'Bearer realm="qosmon"'})
    show_id = path_show_id(request)
    await existing_show(state, show_id)
    pages = _pages(request)
    if pages.streams >= MAX_STREAMS:
        raise ApiError(503, f"{MAX_STREAMS} live pages are open already; retry later",
                       headers={"Retry-After": "10"})
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    pages.streams += 1
    try:
        await resp.prepare(request)
        sent: str | None = None
        quiet_since = time.monotonic()
        while not state.shutdown.is_set():
            built = await _build(state, pages, show_id, lang)
            if not built.running:
                await resp.write(_event("ended", built.body))
                break
            if built.body != sent:
                await resp.write(_event("view", built.body))
                sent = built.body
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= SSE_KEEPALIVE_S:
                await resp.write(b": keepalive\n\n")
                quiet_since = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.shutdown.wait(), state.config.page_refresh_s)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        pages.streams -= 1
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


def _event(name: str, html: str) -> bytes:
    # Each line of the body is one data field; the browser joins them with "\n".
    lines = "".join(f"data: {line}\n" for line in html.replace("\r", "").split("\n"))
    return f"event: {name}\n{lines}\n".encode()
