"""Request plumbing shared by every route module: who is calling (probe,
feed and read tokens, with the 401/403 answers), the rate limit, reading a
size-capped body, parsing it into a model (a 400 naming the field), the show
id and timestamp checks, JSON answers, and the middleware that turns every
refusal into the documented error shape.

A handler reads as the order of work: ``auth_*``, ``read_body``, ``parse``,
checks, store, pipeline, ``json_response``. Every refusal is an ``ApiError``
raised from here or from ``wire``; nothing else answers an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, NoReturn, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from qosmon.collector.auth import bearer_token, token_digest
from qosmon.collector.state import STATE, CollectorState
from qosmon.collector.wire import ApiError, ShowPath, check_numbers, from_validation_error
from qosmon.model import Show
from qosmon.store.base import BatchConflictError, StoreError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[web.StreamResponse]])

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="qosmon"'}
_REJECT_REASONS = {
    400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method", 408: "body_timeout", 409: "conflict", 413: "too_large",
    415: "content_type", 429: "rate_limited", 503: "store_unavailable",
    504: "request_timeout",
}
# A show id the store does not have is looked up again after this long.
_MISSING_SHOW_TTL_S = 5.0
_SHOW_CACHE_MAX = 10_000


def state_of(request: web.Request) -> CollectorState:
    return request.app[STATE]


# --- who is calling -------------------------------------------------------------

def _unauthenticated(problem: str) -> ApiError:
    return ApiError(401, problem, "Authorization", headers=dict(_CHALLENGE))


def _bearer(request: web.Request) -> str:
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise _unauthenticated("missing or malformed 'Authorization: Bearer <token>' header")
    return token


def _refuse(kind: Literal["probe", "feed", "read"], other_kind: str | None) -> NoReturn:
    """An unknown token is a 401; a known token of the wrong kind a 403."""
    if other_kind is not None:
        raise ApiError(403, f"a {other_kind} token cannot post {kind} data", "Authorization")
    raise _unauthenticated(f"unknown {kind} token")


def _limit(state: CollectorState, token: str) -> None:
    """Take one request from the token's bucket, or refuse with 429."""
    wait = state.limiter.acquire(token_digest(token), time.monotonic())
    if wait is not None:
        raise ApiError(
            429, f"too many requests for this token; retry in {wait:.2f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def auth_probe(request: web.Request) -> str:
    """The calling probe's id (its token names it)."""
    state = state_of(request)
    token = _bearer(request)
    probe_id = state.tokens.probe_for(token)
    if probe_id is None:
        _refuse("probe", "feed" if state.tokens.is_feed(token) else None)
    _limit(state, token)
    return probe_id


def auth_feed(request: web.Request) -> None:
    state = state_of(request)
    token = _bearer(request)
    if not state.tokens.is_feed(token):
        _refuse("feed", "probe" if state.tokens.probe_for(token) is not None else None)
    _limit(state, token)


def auth_read(request: web.Request) -> None:
    """Reads are open when no read token is configured (a loopback-only
    collector), rate-limited per client address; otherwise a read or feed
    token is needed."""
    state = state_of(request)
    if state.tokens.reads_open:
        if state.open_limiter is not None:
            key = f"addr:{request.remote or ''}".encode()
            wait = state.open_limiter.acquire(key, time.monotonic())
            if wait is not None:
                raise ApiError(
                    429, f"too many reads from this address; retry in {wait:.2f} s",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        return
    token = _bearer(request)
    if not state.tokens.may_read(token):
        _refuse("read", None)
    _limit(state, token)


# --- the body ---------------------------------------------------------------------

async def read_body(request: web.Request, media: Literal["json", "csv"] = "json") -> bytes:
    """The request body, refused before reading if its media type is wrong
    (415) or its declared length is over ``max_body_bytes`` (413); a chunked
    body over the cap is refused by aiohttp while reading (``client_max_size``)."""
    ctype = request.content_type
    if media == "json":
        ok = ctype == "application/json" or ctype.endswith("+json")
        expected = "application/json"
    else:
        ok = ctype in ("text/csv", "text/plain")
        expected = "text/csv"
    if not ok:
        raise ApiError(415, f"Content-Type must be {expected}, not {ctype}", "Content-Type")
    config = state_of(request).config
    limit = config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"body of {request.content_length} bytes exceeds {limit} bytes")
    # A client trickling its body holds a connection and a buffer: cut off.
    timeout = config.limits.body_timeout_s
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise ApiError(408, f"body not received within {timeout:g} s",
                       headers={"Connection": "close"}) from None


@contextmanager
def invalid_is_400(prefix: str = "") -> Iterator[None]:
    """Turn a pydantic ``ValidationError`` into a 400 naming the first field."""
    try:
        yield
    except ValidationError as exc:
        raise from_validation_error(exc, prefix) from None


def parse(model: type[M], body: bytes, check: bool = True) -> M:
    """``body`` as ``model``. Strict: the wire format is the documented JSON
    types; lax parsing would turn ``true`` into 1 and "12" into 12, hiding a
    producer's bug. ``check``: also refuse what the model lets through
    (infinities, integers beyond 64 bits)."""
    with invalid_is_400():
        parsed = model.model_validate_json(body, strict=True)
    if check:
        check_numbers(parsed)
    return parsed


# --- the checks every route shares ---------------------------------------------------

def valid_show_id(value: str, field: str = "show_id") -> str:
    """A show id from a path or query, validated like ``Show.show_id``."""
    try:
        return ShowPath(show_id=value).show_id
    except ValidationError as exc:
        raise ApiError(400, exc.errors(include_url=False)[0]["msg"], field) from None


def path_show_id(request: web.Request) -> str:
    return valid_show_id(request.match_info["show_id"])


def query_show_id(request: web.Request, required: bool) -> str | None:
    value = request.query.get("show_id") or None
    if value is None:
        if required:
            raise ApiError(400, "required", "show_id")
        return None
    return valid_show_id(value)


def same_show(value: str, show_id: str, field: str) -> None:
    """A body's show id must be the one its path names."""
    if value != show_id:
        raise ApiError(400, f"differs from the show id in the path ({show_id!r})", field)


async def existing_show(state: CollectorState, show_id: str) -> Show:
    show = await state.store_call("get_show", state.store.get_show, show_id)
    if show is None:
        raise ApiError(404, f"no show {show_id!r}", "show_id")
    remember_show(state, show_id)
    return show


def remember_show(state: CollectorState, show_id: str) -> None:
    if len(state.known_shows) < _SHOW_CACHE_MAX:
        state.known_shows.add(show_id)
    state.missing_shows.pop(show_id, None)


async def known_show(state: CollectorState, show_id: str, field: str) -> None:
    """Refuse (404) data for a show the collector does not know: it would be
    stored forever and never diagnosed. Known ids are cached, and so are
    misses for a few seconds, so neither a probe's steady traffic nor a
    flood of made-up ids costs a store read per request."""
    if show_id in state.known_shows:
        return
    now = time.monotonic()
    missed = state.missing_shows.get(show_id)
    if missed is None or now - missed > _MISSING_SHOW_TTL_S:
        if await state.store_call("get_show", state.store.get_show, show_id) is not None:
            remember_show(state, show_id)
            return
        if len(state.missing_shows) >= _SHOW_CACHE_MAX:
            state.missing_shows.clear()
        state.missing_shows[show_id] = missed = now
    raise ApiError(404, f"no show {show_id!r}; create it (PUT /api/v1/shows/{{show_id}}) "
                        "before sending data for it", field)


async def show_to_read(request: web.Request) -> Show:
    """For a GET under ``/api/v1/shows/{show_id}``: the caller may read, and
    the show in the path exists (else 404)."""
    auth_read(request)
    return await existing_show(state_of(request), path_show_id(request))


def not_future(state: CollectorState, ts: float, now: float, field: str, **extra: Any) -> None:
    """Refuse a time more than ``max_future_skew_s`` ahead of the collector's
    clock: it would sort after everything still to come."""
    skew = state.config.max_future_skew_s
    if ts > now + skew:
        raise ApiError(
            400, f"{ts - now:.1f} s ahead of the collector's clock (limit {skew:g} s)", field,
            **extra,
        )


def not_stale(state: CollectorState, ts: float, now: float, field: str) -> None:
    """Refuse a measurement older than ``limits.max_sample_age_s``: a clock
    at 1970 would make the live analysis replay decades second by second."""
    age = state.config.limits.max_sample_age_s
    if ts < now - age:
        raise ApiError(400, f"{now - ts:.0f} s older than the collector's clock "
                            f"(limit {age:g} s)", field)


def check_show_times(state: CollectorState, show: Show, now: float) -> None:
    """A show's span must make sense before anything is computed over it:
    a report over ``start_ts=1, end_ts=-5`` would size arrays by it."""
    lim = state.config.limits
    lead = lim.max_show_lead_days * 86400.0
    longest = lim.max_show_hours * 3600.0
    if show.start_ts > now + lead:
        raise ApiError(400, f"more than {lim.max_show_lead_days:g} days ahead", "start_ts")
    if show.start_ts < now - state.config.limits.max_sample_age_s - longest:
        raise ApiError(400, "too far in the past for live data "
                            f"(limit {lim.max_sample_age_s + longest:g} s)", "start_ts")
    for name in ("end_ts", "planned_end_ts"):
        end = getattr(show, name)
        if end is None:
            continue
        if end <= show.start_ts:
            raise ApiError(400, f"must be after start_ts ({show.start_ts})", name)
        if end - show.start_ts > longest:
            raise ApiError(400, f"more than {lim.max_show_hours:g} h after start_ts", name)


# --- answers ------------------------------------------------------------------------

def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":"), allow_nan=False).encode(),
        status=status, content_type="application/json",
    )


def dump_models(items: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in items]


def streams(handler: _Handler) -> _Handler:
    """Mark a handler whose answer is a long-lived stream (server-sent
    events): the request timeout does not apply to it."""
    setattr(handler, "_qosmon_stream", True)  # noqa: B010 - a marker on a function
    return handler


def _is_stream(request: web.Request) -> bool:
    return bool(getattr(request.match_info.route.handler, "_qosmon_stream", False))


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every refusal in the documented shape, counted by reason: ours
    (``ApiError``), aiohttp's (404, 405, 413 while reading) and a failing
    store (503: nothing was acknowledged)."""
    state = state_of(request)
    timeout = state.config.limits.request_timeout_s
    try:
        if _is_stream(request):
            return await handler(request)
        try:
            async with asyncio.timeout(timeout):
                return await handler(request)
        except TimeoutError:
            raise ApiError(504, f"not answered within {timeout:g} s; nothing was "
                                "acknowledged, retry later", headers={"Retry-After": "1"}
                           ) from None
    except ApiError as exc:
        err: ApiError = exc
    except BatchConflictError as exc:
        err = ApiError(409, str(exc), "batch_id")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        err = ApiError(exc.status, exc.reason)
        if "Allow" in exc.headers:
            err.headers["Allow"] = exc.headers["Allow"]
    except StoreError as exc:
        log.error("store error on %s %s: %s", request.method, request.path, exc)
        err = ApiError(503, "store unavailable; nothing was acknowledged, retry later",
                       headers={"Retry-After": "1"})
    reason = _REJECT_REASONS.get(err.status, str(err.status))
    state.metrics.rejects.labels(reason).inc()
    log.debug("%s %s -> %d %s", request.method, request.path, err.status, err.problem)
    resp = json_response(err.body(), status=err.status)
    resp.headers.update(err.headers)
    return resp


PINNED_LABELS = ("region", "isp", "edge_node")


def check_pinned(state: CollectorState, probe_id: str, values: dict[str, set[str]],
                 field: str) -> None:
    """Each label the probe's token is pinned to (``[[probes]] labels``)
    must be the only value claimed for it: samples, heartbeats and
    assignment requests alike, so a leaked token cannot speak for, or be
    given the streams of, another place (403)."""
    pin = state.pins.get(probe_id)
    if pin is None:
        return
    for name in PINNED_LABELS:
        want = getattr(pin.labels, name)
        if want is not None and values[name] != {want}:
            other = sorted(values[name] - {want})[:1] or [""]
            raise ApiError(403, f"this token is pinned to {name} {want!r}, not {other[0]!r}",
                           field.format(name=name))
