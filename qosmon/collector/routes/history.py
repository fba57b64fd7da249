"""History across the stored shows: the page ``qosmon history`` writes,
served live (``GET /history``), and its JSON (``GET /api/v1/history``)."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from aiohttp import web

from qosmon.collector.request import auth_read, json_response, state_of
from qosmon.collector.wire import ApiError
from qosmon.history.analysis import Change, History, analyse, history_json
from qosmon.history.command import parse_change, parse_date
from qosmon.history.render import render_history
from qosmon.i18n import LANGUAGES
from qosmon.model import ShowSummary

routes = web.RouteTableDef()

MAX_CHANGES = 20


def _date(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return parse_date(raw)
    except argparse.ArgumentTypeError as e:
        raise ApiError(400, str(e), name) from None


def _changes(request: web.Request) -> list[Change]:
    raw = request.query.getall("change", [])
    if len(raw) > MAX_CHANGES:
        raise ApiError(400, f"at most {MAX_CHANGES} changes", "change")
    try:
        return [parse_change(c) for c in raw]
    except argparse.ArgumentTypeError as e:
        raise ApiError(400, str(e), "change") from None


async def _history(request: web.Request) -> History:
    state = state_of(request)
    auth_read(request)
    since, until = _date(request, "since"), _date(request, "until")
    if since is not None and until is not None and since >= until:
        raise ApiError(400, "must be before until", "since")
    changes = _changes(request)
    # Only stored summaries: ended shows get theirs from the live pipeline,
    # and a request must not turn into reading every raw sample of the past.
    summaries: list[ShowSummary] = await state.store_call(
        "show_summaries", state.store.show_summaries, since, until)
    return analyse(summaries, changes, None, since, until)


@routes.get("/history")
async def get_history_page(request: web.Request) -> web.Response:
    lang = request.query.get("lang", "en")
    if lang not in LANGUAGES:
        raise ApiError(400, f"one of: {', '.join(LANGUAGES)}", "lang")
    h = await _history(request)
    html = render_history(h, lang, link=lambda show_id: f"/shows/{quote(show_id, safe='')}")
    return web.Response(text=html, content_type="text/html", charset="utf-8")


@routes.get("/api/v1/history")
async def get_history(request: web.Request) -> web.Response:
    return json_response(history_json(await _history(request)))

